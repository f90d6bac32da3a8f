package kube

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// execConfig is a kubeconfig user's exec credential plugin (clientcmd's
// ExecConfig keys).
type execConfig struct {
	Command string   `json:"command"`
	Args    []string `json:"args"`
	Env     []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"env"`
	APIVersion         string `json:"apiVersion"`
	InstallHint        string `json:"installHint"`
	ProvideClusterInfo bool   `json:"provideClusterInfo"`
	InteractiveMode    string `json:"interactiveMode"`
}

// execCluster is what a plugin that asks for it (provideClusterInfo)
// learns of the cluster.
type execCluster struct {
	Server                   string `json:"server"`
	TLSServerName            string `json:"tls-server-name,omitempty"`
	InsecureSkipTLSVerify    bool   `json:"insecure-skip-tls-verify,omitempty"`
	CertificateAuthorityData []byte `json:"certificate-authority-data,omitempty"`
	ProxyURL                 string `json:"proxy-url,omitempty"`
}

// execCredential is client.authentication.k8s.io's ExecCredential, the
// plugin's input (spec) and output (status).
type execCredential struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       struct {
		Cluster     *execCluster `json:"cluster,omitempty"`
		Interactive bool         `json:"interactive"`
	} `json:"spec"`
	Status *struct {
		Token                 string `json:"token"`
		ClientCertificateData string `json:"clientCertificateData"`
		ClientKeyData         string `json:"clientKeyData"`
	} `json:"status,omitempty"`
}

// execTimeout bounds a credential plugin's run.
const execTimeout = 30 * time.Second

// execCredentials runs the plugin once, as client-go does before its first
// request, never interactively (a CNI plugin's stdin is its configuration):
// a plugin whose interactiveMode is Always is refused. It returns the token
// or the client certificate it printed. Errors name the command, never what
// it printed on stdout; its stderr's first line is kept for a failure.
func execCredentials(e *execConfig, dir string, cluster *execCluster) (token string, cert *tls.Certificate, err error) {
	if err := checkExecAPIVersion(e); err != nil {
		return "", nil, err
	}
	if e.InteractiveMode == "Always" {
		return "", nil, fmt.Errorf("exec: interactiveMode Always: the plugin has no terminal to ask on")
	}
	in := execCredential{APIVersion: e.APIVersion, Kind: "ExecCredential"}
	if e.ProvideClusterInfo {
		in.Spec.Cluster = cluster
	}
	info, err := json.Marshal(&in)
	if err != nil {
		return "", nil, err
	}
	command := e.Command
	if strings.ContainsRune(command, os.PathSeparator) {
		command = resolve(dir, command) // relative to the kubeconfig, as clientcmd
	}
	ctx, cancel := context.WithTimeout(context.Background(), execTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, command, e.Args...)
	cmd.Env = os.Environ()
	for _, kv := range e.Env {
		cmd.Env = append(cmd.Env, kv.Name+"="+kv.Value)
	}
	cmd.Env = append(cmd.Env, "KUBERNETES_EXEC_INFO="+string(info))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := fmt.Sprintf("exec: %s: %v", e.Command, err)
		if line := strings.TrimSpace(firstLine(stderr.String())); line != "" {
			msg += ": " + line
		}
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			msg += installHint(e.InstallHint)
		}
		return "", nil, errors.New(msg)
	}
	var out execCredential
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return "", nil, fmt.Errorf("exec: %s: its output is not an ExecCredential", e.Command)
	}
	switch {
	case out.Kind != "ExecCredential" || out.APIVersion != e.APIVersion:
		return "", nil, fmt.Errorf("exec: %s: printed a %s of %s, want an ExecCredential of %s", e.Command, out.Kind, out.APIVersion, e.APIVersion)
	case out.Status == nil:
		return "", nil, fmt.Errorf("exec: %s: printed no status", e.Command)
	case out.Status.Token == "" && out.Status.ClientCertificateData == "" && out.Status.ClientKeyData == "":
		return "", nil, fmt.Errorf("exec: %s: printed neither a token nor a certificate and key", e.Command)
	case (out.Status.ClientCertificateData == "") != (out.Status.ClientKeyData == ""):
		return "", nil, fmt.Errorf("exec: %s: printed a certificate or a key, not both", e.Command)
	}
	if out.Status.ClientCertificateData != "" {
		pair, err := tls.X509KeyPair([]byte(out.Status.ClientCertificateData), []byte(out.Status.ClientKeyData))
		if err != nil {
			return "", nil, fmt.Errorf("exec: %s: its certificate and key: %w", e.Command, err)
		}
		cert = &pair
	}
	return out.Status.Token, cert, nil
}

// checkExecAPIVersion refuses a plugin of an ExecCredential version
// client-go does not speak, as client-go does when it builds the
// authenticator, whether or not it runs the plugin.
func checkExecAPIVersion(e *execConfig) error {
	switch e.APIVersion {
	case "client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1":
		return nil
	}
	return fmt.Errorf("exec: apiVersion %q: want client.authentication.k8s.io/v1 or v1beta1", e.APIVersion)
}

func installHint(hint string) string {
	if hint == "" {
		return ""
	}
	return " (" + strings.TrimSpace(hint) + ")"
}
