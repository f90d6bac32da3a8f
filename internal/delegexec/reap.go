package delegexec

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// reapWait bounds Reap's wait for the processes it killed to end.
const reapWait = 5 * time.Second

// Reap kills what is left of an ADD of containerID whose runner died (a
// SIGKILLed plexus or plexusd): its delegates died with it (Pdeathsig), but
// a delegate's IPAM plugin may run on and take an address after the
// runtime's DEL freed everything. Every process other than this one whose
// environment says CNI_COMMAND=ADD for containerID is such a leftover (a
// runtime sends DEL only once its ADD returned; the caller holds the
// sandbox's lock, so no live ADD runs). Reap SIGKILLs them and waits until
// none runs; it returns how many it killed, or an error when some still
// run after reapWait.
func Reap(containerID string) (int, error) {
	want := [][]byte{[]byte("CNI_COMMAND=ADD"), []byte("CNI_CONTAINERID=" + containerID)}
	self := os.Getpid()
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("list processes: %w", err)
	}
	var killed []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + p.Name() + "/environ")
		if err != nil || !hasAll(env, want) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
	}
	for deadline := time.Now().Add(reapWait); ; time.Sleep(5 * time.Millisecond) {
		running := 0
		for _, pid := range killed {
			// A zombie's environment reads empty, and so does that of a
			// process that reused the pid.
			if env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ"); err == nil && hasAll(env, want) {
				running++
			}
		}
		if running == 0 {
			return len(killed), nil
		}
		if time.Now().After(deadline) {
			return len(killed), fmt.Errorf("%d of the %d processes left by an interrupted ADD of %s still run %s after SIGKILL",
				running, len(killed), containerID, reapWait)
		}
	}
}

// hasAll reports whether the NUL-separated environment env holds every
// variable of want exactly.
func hasAll(env []byte, want [][]byte) bool {
	found := 0
	for _, kv := range bytes.Split(env, []byte{0}) {
		for _, w := range want {
			if bytes.Equal(kv, w) {
				found++
			}
		}
	}
	return found == len(want)
}
