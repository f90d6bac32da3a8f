// Package delegexec runs CNI delegates (invoke.Exec) so that each dies with
// the process that runs it: plexusd, or plexus in process. A runner killed
// during an ADD (a runtime's timeout SIGKILLs plexus; plexusd may be
// restarted) must leave no delegate running on: it could take an address
// or create an interface after the runtime's DEL of that sandbox has freed
// everything. Optionally the delegates run chrooted into another root
// (plexusd's view of the host's).
package delegexec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// Exec runs delegates, each killed (Pdeathsig) when the thread that
// started it, and so its runner, dies. With Root set (in plexusd: the
// host's root directory as mounted in its container) that is their file
// system root: a delegate plexusd runs sees the same files as one the
// runtime runs on the host. Plugin, netns and CNI_PATH paths are the
// host's; plexusd mounts the directories it uses itself at the same paths,
// so they resolve alike on both sides. Stderr receives what a successful
// delegate printed there (nil: dropped); a failed one's is in its error.
type Exec struct {
	version.PluginDecoder
	Root   string
	Stderr io.Writer
}

var _ invoke.Exec = (*Exec)(nil)

// ExecPlugin implements invoke.Exec.
func (c *Exec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, pluginPath)
	cmd.Env = environ
	cmd.Stdin = bytes.NewReader(stdinData)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// The delegate leads a process group of its own, which the processes
	// it starts (its IPAM plugin) join: when it fails, is killed, or its
	// context ends, the whole group is killed before the caller goes on
	// to roll back, so that no IPAM plugin of it can take an address after
	// that rollback (Pdeathsig alone reaches the delegate, not its children).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if c.Root != "" {
		cmd.Dir = "/"
		cmd.SysProcAttr.Chroot = c.Root
	}
	// Pdeathsig follows the thread that started the child: this goroutine
	// keeps its thread until the delegate has exited.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Run(); err != nil {
		if cmd.Process != nil {
			killGroup(cmd.Process.Pid)
		}
		return nil, pluginFailure(pluginPath, err, stdout.Bytes(), stderr.Bytes())
	}
	if c.Stderr != nil && stderr.Len() > 0 {
		_, _ = stderr.WriteTo(c.Stderr)
	}
	return stdout.Bytes(), nil
}

// groupGone bounds the wait for a killed group's processes to end.
const groupGone = 2 * time.Second

// killGroup SIGKILLs the process group pgid (a failed delegate's children
// that still run) and waits, up to groupGone, until none of them runs: a
// SIGKILLed process runs no more user code, the wait covers a system call
// in progress. Zombies count as gone (whoever reaps orphans may not).
func killGroup(pgid int) {
	if syscall.Kill(-pgid, syscall.SIGKILL) != nil {
		return // no process left in it
	}
	for deadline := time.Now().Add(groupGone); groupRuns(pgid) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

// groupRuns reports whether a process of group pgid runs (is not a zombie).
func groupRuns(pgid int) bool {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		if state, pgrp, ok := procStat(pid); ok && pgrp == pgid && state != 'Z' {
			return true
		}
	}
	return false
}

// procStat reads a process's state and process group from /proc.
func procStat(pid int) (state byte, pgrp int, ok bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
	i := bytes.LastIndex(stat, []byte(") "))
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(stat[i+2:]))
	if len(f) < 3 {
		return 0, 0, false
	}
	pgrp, err = strconv.Atoi(f[2])
	return f[0][0], pgrp, err == nil
}

// FindInPath implements invoke.Exec. The search runs in the runner's
// view (in plexusd's, the CNI bin directory is mounted at the host's path).
func (c *Exec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

// pluginFailure turns a failed run into the CNI error the plugin printed
// on stdout, or one that says what it printed on stderr.
func pluginFailure(path string, err error, stdout, stderr []byte) error {
	var cniErr types.Error
	if len(stdout) > 0 {
		if jerr := json.Unmarshal(stdout, &cniErr); jerr == nil && (cniErr.Code != 0 || cniErr.Msg != "") {
			return &cniErr
		}
		return &types.Error{Code: types.ErrInternal, Msg: fmt.Sprintf("%s failed (%v) and printed no CNI error: %q", path, err, stdout)}
	}
	var exitErr *exec.ExitError
	if len(stderr) > 0 || errors.As(err, &exitErr) {
		return &types.Error{Code: types.ErrInternal, Msg: fmt.Sprintf("%s failed: %v: %q", path, err, bytes.TrimSpace(stderr))}
	}
	return &types.Error{Code: types.ErrInternal, Msg: fmt.Sprintf("running %s: %v", path, err)}
}
