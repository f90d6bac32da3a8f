package reexec_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/internal/reexec"
)

// plugin writes an executable script named name into a new directory.
func plugin(t *testing.T, name, script string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runner(dir string, out, errOut *bytes.Buffer) *reexec.Runner {
	return &reexec.Runner{Binary: "full", Env: []string{"PLEXUS_LOCAL=1"}, Stdout: out, Stderr: errOut,
		Environ: func() []string { return []string{"CNI_COMMAND=ADD", "CNI_PATH=/nonexistent:" + dir} }}
}

// The binary gets the runtime's environment plus Env, the configuration on
// stdin, and its output reaches our stdout.
func TestRunPassesTheRequestThrough(t *testing.T) {
	dir := plugin(t, "full", `echo "$CNI_COMMAND $PLEXUS_LOCAL $(cat)"; echo note >&2`)
	var out, errOut bytes.Buffer
	if err := runner(dir, &out, &errOut).Run(&skel.CmdArgs{StdinData: []byte(`{"name":"n"}`)}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "ADD 1 {\"name\":\"n\"}\n" {
		t.Errorf("stdout %q", got)
	}
	if errOut.String() != "note\n" {
		t.Errorf("stderr %q", errOut.String())
	}
}

// A failing binary's CNI error comes back as it printed it, code included;
// our stdout gets nothing.
func TestRunKeepsTheBinarysError(t *testing.T) {
	dir := plugin(t, "full", `echo '{"cniVersion":"1.0.0","code":7,"msg":"ipam.range: bad","details":"d"}'; exit 1`)
	var out, errOut bytes.Buffer
	err := runner(dir, &out, &errOut).Run(&skel.CmdArgs{})
	var e *types.Error
	if !errors.As(err, &e) || e.Code != 7 || e.Msg != "ipam.range: bad" || e.Details != "d" {
		t.Fatalf("error %#v, want the binary's code 7", err)
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q after a failure", out.String())
	}
}

func TestRunFailures(t *testing.T) {
	t.Run("binary missing", func(t *testing.T) {
		var out, errOut bytes.Buffer
		err := runner(t.TempDir(), &out, &errOut).Run(&skel.CmdArgs{})
		var e *types.Error
		if !errors.As(err, &e) || e.Code != types.ErrPluginNotAvailable || !strings.Contains(e.Msg, "full not found in CNI_PATH") {
			t.Fatalf("error %v, want code 50 naming the binary", err)
		}
	})
	t.Run("crash without a CNI error", func(t *testing.T) {
		dir := plugin(t, "full", `echo 'panic: boom'; exit 2`)
		var out, errOut bytes.Buffer
		err := runner(dir, &out, &errOut).Run(&skel.CmdArgs{})
		var e *types.Error
		if !errors.As(err, &e) || e.Code != types.ErrInternal || !strings.Contains(e.Msg, "panic: boom") {
			t.Fatalf("error %v, want code 999 with the binary's output", err)
		}
	})
}
