package nodesim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// PluginError is returned when a CNI plugin process fails. It unwraps to the
// plugin's *types.Error when the plugin printed one, so callers can use
// errors.As to inspect the CNI error code.
type PluginError struct {
	// Plugin is the path of the plugin binary.
	Plugin string
	// Command is the CNI_COMMAND of the failed invocation.
	Command string
	// Stderr is what the plugin wrote to stderr (its log output).
	Stderr string
	// Err is the decoded *types.Error or, when the plugin printed none, the
	// process error.
	Err error
}

// Error implements error.
func (e *PluginError) Error() string {
	msg := fmt.Sprintf("%s %s: %v", filepath.Base(e.Plugin), e.Command, e.Err)
	if e.Stderr != "" {
		msg += "; stderr: " + e.Stderr
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *PluginError) Unwrap() error { return e.Err }

// nsExec implements invoke.Exec by running plugins inside a node's network
// namespace (the node's "host" namespace) through nsenter. Finding plugins
// and decoding VERSION output behave as with invoke.RawExec.
type nsExec struct {
	netnsPath string
	logf      func(format string, args ...any)
}

var _ invoke.Exec = (*nsExec)(nil)

// ExecPlugin runs pluginPath in the node namespace with the environment and
// stdin libcni prepared, and returns the plugin's stdout.
func (e *nsExec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "nsenter", "--net="+e.netnsPath, "--", pluginPath)
	cmd.Env = environ
	cmd.Stdin = bytes.NewReader(stdinData)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	command := envValue(environ, "CNI_COMMAND")
	runErr := cmd.Run()
	errText := strings.TrimSpace(stderr.String())
	if runErr != nil {
		return nil, &PluginError{
			Plugin:  pluginPath,
			Command: command,
			Stderr:  errText,
			Err:     decodePluginError(runErr, stdout.Bytes()),
		}
	}
	if errText != "" && e.logf != nil {
		e.logf("%s %s stderr: %s", filepath.Base(pluginPath), command, errText)
	}
	return stdout.Bytes(), nil
}

// FindInPath locates a plugin binary in paths.
func (e *nsExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

// Decode parses a plugin's VERSION output.
func (e *nsExec) Decode(jsonBytes []byte) (version.PluginInfo, error) {
	var decoder version.PluginDecoder
	return decoder.Decode(jsonBytes)
}

// decodePluginError turns a failed run into the plugin's CNI error when its
// stdout holds one.
func decodePluginError(runErr error, stdout []byte) error {
	if len(bytes.TrimSpace(stdout)) == 0 {
		return fmt.Errorf("plugin failed without an error object: %w", runErr)
	}
	var cniErr types.Error
	if err := json.Unmarshal(stdout, &cniErr); err != nil || (cniErr.Code == 0 && cniErr.Msg == "") {
		return fmt.Errorf("plugin failed (%w) with unparsable output %q", runErr, stdout)
	}
	return &cniErr
}

// envValue returns the last value of key in environ.
func envValue(environ []string, key string) string {
	value := ""
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			value = v
		}
	}
	return value
}
