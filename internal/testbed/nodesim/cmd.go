package nodesim

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// netnsDir is where `ip netns` keeps its named namespaces.
const netnsDir = "/run/netns"

// commandTimeout bounds every helper command so that a wedged tool cannot
// hang a test run; it is a safety net, not a synchronisation device.
const commandTimeout = 60 * time.Second

// run executes name with args and returns its stdout. A failure includes the
// command line and its stderr.
func run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s",
			name, strings.Join(args, " "), err, strings.TrimSpace(stdout.String()+" "+stderr.String()))
	}
	return stdout.String(), nil
}

// ip runs an iproute2 command.
func ip(args ...string) error {
	_, err := run(context.Background(), "ip", args...)
	return err
}

// nsExecCommand runs a command inside the named network namespace.
func nsExecCommand(netnsName string, args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("no command given")
	}
	return run(context.Background(), "ip", append([]string{"netns", "exec", netnsName}, args...)...)
}

// randomHex returns n random bytes as 2n hex characters.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error.
	return hex.EncodeToString(b)
}

// randomUID returns a random RFC 4122 version 4 UUID string.
func randomUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// netnsPath returns the bind-mount path of a named namespace.
func netnsPath(name string) string {
	return filepath.Join(netnsDir, name)
}

// netnsExists reports whether a named namespace exists.
func netnsExists(name string) bool {
	_, err := os.Stat(netnsPath(name))
	return err == nil
}

// createNetNS creates a namespace named prefix+random suffix with lo up.
func createNetNS(prefix string) (string, error) {
	name := prefix + randomHex(4)
	if err := ip("netns", "add", name); err != nil {
		return "", fmt.Errorf("create netns: %w", err)
	}
	if err := ip("-n", name, "link", "set", "lo", "up"); err != nil {
		return name, errors.Join(fmt.Errorf("bring up lo in %s: %w", name, err), deleteNetNS(name))
	}
	return name, nil
}

// deleteNetNS removes a named namespace; a missing one is not an error.
func deleteNetNS(name string) error {
	if name == "" || !netnsExists(name) {
		return nil
	}
	if err := ip("netns", "delete", name); err != nil {
		return fmt.Errorf("delete netns %s: %w", name, err)
	}
	return nil
}

// validLinkName rejects names the kernel would refuse.
func validLinkName(name string) error {
	if name == "" || len(name) > 15 || strings.ContainsAny(name, "/: \t\n") || name == "." || name == ".." {
		return fmt.Errorf("invalid link name %q", name)
	}
	return nil
}

// ping sends one echo request from a namespace and waits at most five
// seconds for a reply (-w bounds the whole run; lost first packets, e.g.
// during neighbour resolution, are retried within that bound).
func ping(netnsName, addr string) error {
	if _, err := nsExecCommand(netnsName, "ping", "-n", "-q", "-c", "1", "-w", "5", addr); err != nil {
		return fmt.Errorf("ping %s from %s: %w", addr, netnsName, err)
	}
	return nil
}
