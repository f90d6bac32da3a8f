package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// blockingExec holds the ADD of one key until its context ends.
type blockingExec struct {
	*fakeExec
	key     string
	entered chan struct{}
}

func (b *blockingExec) ExecPlugin(ctx context.Context, path string, stdin []byte, environ []string) ([]byte, error) {
	if strings.Contains(strings.Join(environ, " "), "CNI_COMMAND=ADD") && strings.Contains(string(stdin), b.key) {
		close(b.entered)
		<-ctx.Done()
		return nil, context.Cause(ctx)
	}
	return b.fakeExec.ExecPlugin(ctx, path, stdin, environ)
}

// uniqueArgs gives the fixture's sandbox a container ID no other test
// shares (Reap looks at every process of the machine).
func uniqueArgs(f *fixture) *skel.CmdArgs {
	a := f.args("uid-1")
	a.ContainerID = fmt.Sprintf("turn-%d-%d", os.Getpid(), time.Now().UnixNano())
	return a
}

// plexusd still runs an ADD whose runtime gave up, and the runtime's DEL of
// that sandbox arrives: the DEL cancels the ADD, which rolls back, and then
// deletes with nothing left behind, instead of waiting for the ADD's
// timeout or racing it.
func TestDelCancelsTheADDOfItsSandbox(t *testing.T) {
	f := newFixture(t, map[string]string{netselect.NetworksAnnotation: "a"})
	b := &blockingExec{fakeExec: f.exec, key: `"name":"a"`, entered: make(chan struct{})}
	f.p.Exec = b
	args := uniqueArgs(f)
	added := make(chan error, 1)
	go func() {
		_, _, err := f.p.Do(context.Background(), "ADD", args)
		added <- err
	}()
	select {
	case <-b.entered:
	case err := <-added:
		t.Fatalf("ADD returned before its delegate ran: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, _, err := f.p.Do(ctx, "DEL", args); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	// The ADD blocks until cancelled: that DEL returned at all shows it
	// cancelled the ADD and had the lock after it (the ADD's goroutine may
	// report a moment later).
	select {
	case err := <-added:
		if err == nil || !strings.Contains(err.Error(), "DEL arrived") {
			t.Fatalf("the cancelled ADD returned %v, want the DEL named as its cause", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the ADD never returned after its sandbox's DEL")
	}
	entries, err := os.ReadDir(filepath.Join(f.dir, "state", "attachments"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind in the attachment cache: %s", e.Name())
	}
}

// The runner of an ADD was SIGKILLed (its mark stays) and left an IPAM
// plugin running: the next DEL of the sandbox stops it first.
func TestDelAfterAKilledADDStopsWhatItLeft(t *testing.T) {
	f := newFixture(t, map[string]string{netselect.NetworksAnnotation: "a"})
	args := uniqueArgs(f)
	if _, _, err := f.p.Do(context.Background(), "ADD", args); err != nil {
		t.Fatal(err)
	}
	r, err := f.p.load(args)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.store().MarkAdding(args.ContainerID); err != nil {
		t.Fatal(err)
	}
	left := exec.Command("sleep", "60")
	left.Env = []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=" + args.ContainerID}
	if err := left.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { left.Process.Kill() })
	exited := make(chan error, 1)
	go func() { exited <- left.Wait() }()

	if _, _, err := f.p.Do(context.Background(), "DEL", args); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("the left-over process ended with %v, want SIGKILL", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("DEL returned and the process the interrupted ADD left still runs")
	}
	if r.store().Adding(args.ContainerID) {
		t.Error("the ADD's mark outlived the DEL")
	}
}

// A container ID CNI does not allow is the runtime's error (code 4), not
// a reason to try again.
func TestInvalidContainerIDIsTheEnvironmentsError(t *testing.T) {
	f := newFixture(t, nil)
	args := f.args("uid-1")
	args.ContainerID = "../escape"
	for _, cmd := range []string{"ADD", "DEL", "CHECK"} {
		_, _, err := f.p.Do(context.Background(), cmd, args)
		if e := cnierr.ToCNI(err); e == nil || e.Code != cnierr.InvalidEnv || !strings.Contains(e.Msg, `CNI_CONTAINERID "../escape"`) {
			t.Errorf("%s with an invalid container ID: %v; want code %d naming CNI_CONTAINERID", cmd, err, cnierr.InvalidEnv)
		}
	}
}
