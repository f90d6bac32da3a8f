// Command pause is the sandbox container of the real-cluster tier's pods (the
// image containerd's CRI plugin pins as its sandbox image): it holds the
// pod's namespaces and, as PID 1, reaps orphaned children until SIGTERM or
// SIGINT ends it.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
