package nodesim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"
)

// scriptedPlugin records, per CNI command, the namespace it ran in, CNI_ARGS
// and stdin into dir. It fails ADD (stderr plus a code-7 error object) when
// its config contains "fail": true, and otherwise returns an empty result.
const scriptedPlugin = `#!/bin/sh
dir=%q
readlink /proc/self/ns/net > "$dir/$CNI_COMMAND.netns"
printf '%%s' "$CNI_ARGS" > "$dir/$CNI_COMMAND.args"
cat > "$dir/$CNI_COMMAND.stdin"
if [ "$CNI_COMMAND" = ADD ] && grep -q '"fail": *true' "$dir/ADD.stdin"; then
	echo "scripted plugin log line" >&2
	echo '{"cniVersion":"1.1.0","code":7,"msg":"scripted failure"}'
	exit 1
fi
if [ "$CNI_COMMAND" = ADD ]; then
	echo '{"cniVersion":"1.1.0"}'
fi
`

// newScriptedNode creates a node whose network is the scripted plugin,
// which writes its records into the directory records.
func newScriptedNode(t *testing.T, fail bool, records string) *Node {
	t.Helper()
	binDir := t.TempDir()
	script := fmt.Sprintf(scriptedPlugin, records)
	if err := os.WriteFile(filepath.Join(binDir, "scripted"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`{"cniVersion":"1.1.0","name":"scripted","type":"scripted","fail":%t}`, fail)
	n := NewNode(t, NewSwitch(t), "", NodeOptions{
		BinDirs:   []string{binDir},
		ConfFiles: map[string]string{"50-scripted.conf": conf, "90-ignored.conflist": "not json"},
	})
	return n
}

func readRecord(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("plugin record: %v", err)
	}
	return strings.TrimSpace(string(b))
}

func TestPluginRunsInNodeNamespaceWithRuntimeArgs(t *testing.T) {
	requireRoot(t)
	var created namespaces
	t.Run("scenario", func(t *testing.T) {
		records := t.TempDir()
		node := newScriptedNode(t, false, records)
		pod, err := node.RunPod(t.Context(), t, PodSpec{
			Namespace: "team", Name: "web", UID: "uid-1", IfName: "net9",
			ExtraArgs: [][2]string{{"EXTRA", "x"}},
		})
		created.add(node.NetNSName)
		if pod != nil {
			created.add(pod.NetNSName)
		}
		if err != nil {
			t.Fatal(err)
		}
		nodeNS, err := node.Exec("readlink", "/proc/self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		if got := readRecord(t, records, "ADD.netns"); got != strings.TrimSpace(nodeNS) {
			t.Errorf("plugin ran in %s, want the node namespace %s", got, nodeNS)
		}
		wantArgs := "IgnoreUnknown=1;K8S_POD_NAMESPACE=team;K8S_POD_NAME=web;" +
			"K8S_POD_INFRA_CONTAINER_ID=" + pod.SandboxID + ";K8S_POD_UID=uid-1;EXTRA=x"
		if diff := cmp.Diff(wantArgs, readRecord(t, records, "ADD.args")); diff != "" {
			t.Errorf("CNI_ARGS (-want +got):\n%s", diff)
		}
		if len(pod.SandboxID) != 64 {
			t.Errorf("sandbox ID %q: want 64 hex characters", pod.SandboxID)
		}
		if err := pod.Remove(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(readRecord(t, records, "DEL.stdin"), `"name":"scripted"`) {
			t.Error("Remove did not run CNI DEL for the network")
		}
		if netnsExists(pod.NetNSName) {
			t.Errorf("Remove left namespace %s", pod.NetNSName)
		}
		if err := pod.Remove(t.Context()); err != nil {
			t.Errorf("second Remove: %v", err)
		}
	})
	created.assertGone(t)
}

func TestRunPodAddFailure(t *testing.T) {
	requireRoot(t)
	var created namespaces
	records := t.TempDir()
	t.Run("scenario", func(t *testing.T) {
		node := newScriptedNode(t, true, records)
		created.add(node.NetNSName)
		pod, err := node.RunPod(t.Context(), t, PodSpec{SkipPodObject: true})
		if pod == nil {
			t.Fatalf("RunPod returned no pod with error %v", err)
		}
		created.add(pod.NetNSName)
		var pe *PluginError
		if !errors.As(err, &pe) {
			t.Fatalf("ADD error %v: want a *PluginError", err)
		}
		if pe.Command != "ADD" || pe.Stderr != "scripted plugin log line" {
			t.Errorf("PluginError = {Command: %q, Stderr: %q}", pe.Command, pe.Stderr)
		}
		var cniErr *types.Error
		if !errors.As(err, &cniErr) || cniErr.Code != types.ErrInvalidNetworkConfig || cniErr.Msg != "scripted failure" {
			t.Errorf("ADD error %v: want the plugin's code-7 error", err)
		}
		if !netnsExists(pod.NetNSName) {
			t.Error("pod namespace gone before cleanup")
		}
	})
	created.assertGone(t)
	if !fileExists(filepath.Join(records, "DEL.stdin")) {
		t.Error("cleanup did not run CNI DEL after the failed ADD")
	}
}
