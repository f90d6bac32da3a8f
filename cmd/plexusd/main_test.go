package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"plexusd run [flags]", "plexusd uninstall [flags]", "plexusd version", "--log-level string", "Logging and metrics flags:"}},
		{[]string{"-h"}, []string{"plexusd uninstall [flags]"}},
		{[]string{"help"}, []string{"plexusd run [flags]", "plexusd uninstall [flags]"}},
		{[]string{"uninstall", "--help"}, []string{"plexusd uninstall [flags]", "remove the plexus CNI configuration", "--conf-dir string", "Node flags:"}},
		{[]string{"run", "--node-name=n", "-help"}, []string{"plexusd run [flags]"}},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := run(tt.args, &out, &errOut)
		if code != 0 || errOut.Len() > 0 {
			t.Errorf("%v: exit %d, stderr %q; want 0 and the help on stdout", tt.args, code, errOut.String())
		}
		for _, w := range tt.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: help lacks %q:\n%s", tt.args, w, out.String())
			}
		}
	}
	var out bytes.Buffer
	if code := run([]string{"uninstall", "--help"}, &out, &out); strings.Contains(out.String(), "plexusd run") || code != 0 {
		t.Errorf("uninstall --help lists other commands:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"version"}, &out, &out); code != 0 || out.String() != "plexusd dev\n" {
		t.Errorf("version: exit %d, %q", code, out.String())
	}
}

// `plexusd uninstall` works on a node without NODE_NAME: it removes the
// plexus file and names the Multus file a take-over moved aside.
func TestUninstallWithoutNodeName(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	dir := t.TempDir()
	for name, content := range map[string]string{
		"00-plexus.conflist":             `{"cniVersion":"1.0.0","name":"p","plugins":[{"type":"plexus"}]}`,
		"10-cluster.conflist":            `{"cniVersion":"1.0.0","name":"c","plugins":[{"type":"bridge"}]}`,
		"00-multus.conf.moved-by-plexus": `{"cniVersion":"1.0.0","name":"m","type":"multus-shim"}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if code := run([]string{"uninstall", "--conf-dir=" + dir}, &out, &out); code != 0 {
		t.Fatalf("uninstall: exit %d\n%s", code, out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "00-plexus.conflist")); !os.IsNotExist(err) {
		t.Errorf("00-plexus.conflist still there (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "10-cluster.conflist")); err != nil {
		t.Errorf("uninstall touched the primary: %v", err)
	}
	want := "mv " + filepath.Join(dir, "00-multus.conf.moved-by-plexus") + " " + filepath.Join(dir, "00-multus.conf")
	if !strings.Contains(out.String(), want) {
		t.Errorf("uninstall output lacks the rollback %q:\n%s", want, out.String())
	}
}
