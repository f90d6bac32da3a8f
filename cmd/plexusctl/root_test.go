package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHelpAndVersion(t *testing.T) {
	subcommands := []string{"lint", "get", "describe", "graph", "doctor", "ipam", "version"}
	for _, invoked := range []string{"plexusctl", "/usr/local/bin/kubectl-plexus"} {
		name := displayName(invoked)
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(invoked, []string{"--help"}, strings.NewReader(""), &out, &errOut); code != 0 || errOut.Len() > 0 {
				t.Fatalf("--help: exit %d, stderr %q", code, errOut.String())
			}
			for _, sub := range subcommands {
				if !strings.Contains(out.String(), "\n  "+sub+" ") {
					t.Errorf("--help does not list %s:\n%s", sub, out.String())
				}
			}
			if !strings.Contains(out.String(), "Usage:\n  "+name+" [command]") {
				t.Errorf("--help does not use the invoked name %q:\n%s", name, out.String())
			}
			out.Reset()
			if code := run(invoked, []string{"get", "--help"}, strings.NewReader(""), &out, &errOut); code != 0 ||
				!strings.Contains(out.String(), name+" get pods [NAME...]") {
				t.Errorf("get --help: exit %d, output\n%s", code, out.String())
			}
			out.Reset()
			if code := run(invoked, []string{"--version"}, strings.NewReader(""), &out, &errOut); code != 0 || out.String() != name+" dev\n" {
				t.Errorf("--version: exit %d, output %q", code, out.String())
			}
			out.Reset()
			if code := run(invoked, []string{"frob"}, strings.NewReader(""), &out, &errOut); code != exitUsage ||
				!strings.HasPrefix(errOut.String(), name+": unknown command") {
				t.Errorf("unknown command: exit %d, stderr %q", code, errOut.String())
			}
		})
	}
}

// TestNamespaceFlags checks that -n and -A are the root's, with one
// meaning, and the namespace defaults to the kubeconfig context's.
func TestNamespaceFlags(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: team-c}}]
current-context: x
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	pod := "kind: Pod\nmetadata:\n  name: p\n  annotations:\n    k8s.v1.cni.cncf.io/networks: 'a,'\n"
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "lint: context's namespace", args: []string{"lint", "-f", "-", "--kubeconfig", kubeconfig}, wantCode: 1,
			wantStdout: "<stdin>:5: Pod team-c/p: "},
		{name: "lint: -n before the verb", args: []string{"-n", "team-d", "lint", "-f", "-", "--kubeconfig", kubeconfig}, wantCode: 1,
			wantStdout: "<stdin>:5: Pod team-d/p: "},
		{name: "lint: no kubeconfig", args: []string{"lint", "-f", "-"}, wantCode: 1,
			wantStdout: "<stdin>:5: Pod default/p: "},
		{name: "lint: -A", args: []string{"lint", "-A", "-f", "-"}, wantCode: exitUsage,
			wantStderr: "plexusctl: lint: --all-namespaces: lint works in one namespace; use -n NAMESPACE\n"},
		{name: "describe: -A", args: []string{"describe", "network", "x", "-A", "--kubeconfig", kubeconfig}, wantCode: exitUsage,
			wantStderr: "plexusctl: describe: --all-namespaces: describe works in one namespace; use -n NAMESPACE\n"},
		{name: "get: name and selector", args: []string{"get", "pods", "a", "-l", "x=y", "--kubeconfig", kubeconfig}, wantCode: exitUsage,
			wantStderr: "plexusctl: get: selectors cannot be used with pod names\n"},
		{name: "get: name and -A", args: []string{"get", "pods", "a", "-A", "--kubeconfig", kubeconfig}, wantCode: exitUsage,
			wantStderr: "plexusctl: get: a pod cannot be read by name across all namespaces; use -n NAMESPACE\n"},
		{name: "get: -o", args: []string{"get", "pods", "-o", "name", "--kubeconfig", kubeconfig}, wantCode: exitUsage,
			wantStderr: "plexusctl: get: --output \"name\": want one of [table wide json yaml]\n"},
		{name: "negative chunk size", args: []string{"get", "pods", "--chunk-size", "-1"}, wantCode: exitUsage,
			wantStderr: "plexusctl: --chunk-size -1: must be 0 or more\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runCmd(t, pod, tt.args...)
			if code != tt.wantCode || !strings.HasPrefix(stdout, tt.wantStdout) || stderr != tt.wantStderr {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q…, %q", code, stdout, stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
		})
	}
}
