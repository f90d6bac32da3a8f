// Package reexec runs a CNI request in another plugin binary, exactly as
// the runtime would have run it: the same CNI_* environment and the same
// configuration on stdin, with its result or error passed on unchanged.
//
// The binaries a runtime execs on every pod in daemon mode (plexus-shim,
// plexus-ipam) link no Kubernetes client, so they start in a few
// milliseconds. The rare requests they cannot hand to plexusd (a DEL or
// CHECK while the daemon is away, plexus-ipam without a daemon) run in the
// full binary next to them (plexus, plexus-ipam-local) through this
// package. It links nothing but the CNI library.
package reexec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
)

// Runner runs requests in Binary.
type Runner struct {
	// Binary is the plugin's file name, looked up in CNI_PATH and then in
	// the directory of the running executable.
	Binary string
	// Env is added to the runtime's environment (e.g. "PLEXUS_LOCAL=1").
	Env []string
	// Environ returns the runtime's environment (nil: os.Environ).
	Environ func() []string
	// Stdout receives the binary's output on success; Stderr its stderr.
	Stdout, Stderr io.Writer
}

// New returns a Runner of binary writing to the process's stdout and
// stderr.
func New(binary string, env ...string) *Runner {
	return &Runner{Binary: binary, Env: env, Stdout: os.Stdout, Stderr: os.Stderr}
}

// Funcs returns skel entry points that each run the request in Binary.
func (r *Runner) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: r.Run, Del: r.Run, Check: r.Run, GC: r.Run, Status: r.Run}
}

// Run runs the request in Binary: its stdout is copied to Stdout when it
// succeeds; when it fails, its CNI error is returned as it printed it.
func (r *Runner) Run(args *skel.CmdArgs) error {
	environ := r.environ()
	path, err := r.find(environ)
	if err != nil {
		return types.NewError(types.ErrPluginNotAvailable, err.Error(), "")
	}
	cmd := exec.Command(path)
	cmd.Env = append(environ, r.Env...)
	cmd.Stdin = bytes.NewReader(args.StdinData)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = r.Stderr
	// The binary dies with this process: a runtime that kills a plugin on
	// timeout kills the work it started. Pdeathsig follows the thread that
	// started the child, so this goroutine keeps its thread until then.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runErr := cmd.Run()
	if runErr == nil {
		_, err := r.Stdout.Write(out.Bytes())
		return err
	}
	var exit *exec.ExitError
	if !errors.As(runErr, &exit) {
		return types.NewError(types.ErrPluginNotAvailable, fmt.Sprintf("run %s: %v", path, runErr), "")
	}
	var cniErr types.Error
	if json.Unmarshal(out.Bytes(), &cniErr) == nil && cniErr.Code != 0 {
		return &cniErr
	}
	return types.NewError(types.ErrInternal,
		fmt.Sprintf("%s failed (%v) without a CNI error: %q", path, runErr, tail(out.String())), "")
}

func (r *Runner) environ() []string {
	if r.Environ != nil {
		return r.Environ()
	}
	return os.Environ()
}

// find looks Binary up where the runtime looks for plugins, then beside
// this executable (the two are installed together).
func (r *Runner) find(environ []string) (string, error) {
	var dirs []string
	for _, e := range environ {
		if v, ok := strings.CutPrefix(e, "CNI_PATH="); ok {
			dirs = filepath.SplitList(v)
		}
	}
	if self, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(self))
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p := filepath.Join(d, r.Binary)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in CNI_PATH %q nor beside this plugin; it is installed with it",
		r.Binary, strings.Join(dirs, string(filepath.ListSeparator)))
}

func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 512 {
		s = "…" + s[len(s)-512:]
	}
	return s
}
