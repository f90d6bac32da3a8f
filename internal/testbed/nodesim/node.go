package nodesim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// DefaultUplink is the name of a node's uplink when NodeOptions.Uplink is
// empty.
const DefaultUplink = "uplink0"

// NodeOptions configures NewNode.
type NodeOptions struct {
	// Uplink names the node's interface on the switch (default "uplink0").
	// It is up and has no address, ready to be a macvlan/ipvlan master.
	Uplink string
	// BinDirs is the CNI_PATH: typically the reference plugins directory
	// and the directory holding the plexus binaries.
	BinDirs []string
	// Client, when set, is used to create a Pod object for each pod.
	Client kubernetes.Interface
	// ConfFiles maps file names to contents written into ConfDir.
	ConfFiles map[string]string
	// Forward lists host:port addresses on the machine's loopback (the
	// test bed's API server) made reachable at the same address inside the
	// node, so plugins running there reach the control plane.
	Forward []string
	// Logf receives what succeeding plugins print on stderr (default: the
	// test's log).
	Logf func(format string, args ...any)
}

// Node is a simulated Kubernetes node: a network namespace (the node's host
// namespace) with an uplink on a switch, and the directories a container
// runtime uses for CNI.
type Node struct {
	// Name is the Kubernetes node name (spec.nodeName of its pods).
	Name string
	// NetNSName and NetNSPath identify the node's namespace.
	NetNSName string
	NetNSPath string
	// Uplink is the node's interface on the switch.
	Uplink string
	// ConfDir is the CNI configuration directory (like /etc/cni/net.d).
	ConfDir string
	// CacheDir is the libcni cache directory (like /var/lib/cni).
	CacheDir string
	// StateDir is a scratch directory for plugin state that would live on
	// the node's disk, e.g. a host-local "dataDir".
	StateDir string
	// BinDirs is the CNI_PATH used for plugin invocations.
	BinDirs []string
	// Client creates and reads Pod objects; nil disables them.
	Client kubernetes.Interface

	exec *nsExec
}

// NewNode creates a node attached to sw. Its namespace and directories are
// removed in t.Cleanup after the node's pods.
func NewNode(t testing.TB, sw *Switch, name string, opts NodeOptions) *Node {
	t.Helper()
	if name == "" {
		name = "node-" + randomHex(3)
	}
	if opts.Uplink == "" {
		opts.Uplink = DefaultUplink
	}
	n := &Node{
		Name:     name,
		Uplink:   opts.Uplink,
		ConfDir:  mkdir(t, "net.d"),
		CacheDir: mkdir(t, "cache"),
		StateDir: mkdir(t, "state"),
		BinDirs:  opts.BinDirs,
		Client:   opts.Client,
	}
	nsName, err := createNetNS("plx-n")
	if nsName != "" {
		t.Cleanup(func() {
			if err := deleteNetNS(nsName); err != nil {
				t.Errorf("remove node %s: %v", name, err)
			}
		})
	}
	if err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
	n.NetNSName, n.NetNSPath = nsName, netnsPath(nsName)
	n.exec = &nsExec{netnsPath: n.NetNSPath, logf: t.Logf}
	if opts.Logf != nil {
		n.exec.logf = opts.Logf
	}
	if err := n.attach(sw); err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
	for _, addr := range opts.Forward {
		if err := n.forward(t, addr); err != nil {
			t.Fatalf("create node %s: %v", name, err)
		}
	}
	for file, content := range opts.ConfFiles {
		if err := n.WriteConfFile(file, content); err != nil {
			t.Fatalf("create node %s: %v", name, err)
		}
	}
	return n
}

// mkdir creates a fresh directory below the test's temporary directory.
func mkdir(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp(t.TempDir(), name)
	if err != nil {
		t.Fatalf("create %s dir: %v", name, err)
	}
	return dir
}

// attach plugs the node's uplink into the switch and brings it up.
func (n *Node) attach(sw *Switch) error {
	if sw == nil {
		return errors.New("no switch given")
	}
	if err := sw.plug(n.NetNSName, n.Uplink); err != nil {
		return err
	}
	return ip("-n", n.NetNSName, "link", "set", n.Uplink, "up")
}

// WriteConfFile writes a file into the node's ConfDir.
func (n *Node) WriteConfFile(name, content string) error {
	if name != filepath.Base(name) {
		return fmt.Errorf("conf file name %q must not contain a directory", name)
	}
	if err := os.WriteFile(filepath.Join(n.ConfDir, name), []byte(content), 0o600); err != nil {
		return fmt.Errorf("write conf file: %w", err)
	}
	return nil
}

// LoadConfList loads the network configuration the way containerd does: the
// first .conflist, .conf or .json file in ConfDir in file-name order.
func (n *Node) LoadConfList() (*libcni.NetworkConfigList, error) {
	files, err := libcni.ConfFiles(n.ConfDir, []string{".conf", ".conflist", ".json"})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", n.ConfDir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no network config found in %s", n.ConfDir)
	}
	file := files[0]
	if filepath.Ext(file) == ".conflist" {
		list, err := libcni.ConfListFromFile(file)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", file, err)
		}
		return list, nil
	}
	conf, err := libcni.ConfFromFile(file) //nolint:staticcheck // runtimes still accept single-plugin files
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", file, err)
	}
	list, err := libcni.ConfListFromConf(conf) //nolint:staticcheck // as above
	if err != nil {
		return nil, fmt.Errorf("convert %s to a list: %w", file, err)
	}
	return list, nil
}

// cni returns a libcni handle whose plugins run in the node namespace.
func (n *Node) cni() *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir(n.BinDirs, n.CacheDir, n.exec)
}

// Status runs CNI STATUS for the node's network configuration.
func (n *Node) Status(ctx context.Context) error {
	list, err := n.LoadConfList()
	if err != nil {
		return err
	}
	if err := n.cni().GetStatusNetworkList(ctx, list); err != nil {
		return fmt.Errorf("CNI STATUS on node %s: %w", n.Name, err)
	}
	return nil
}

// GC runs CNI GC for the node's network configuration; attachments not in
// valid are cleaned up (libcni first DELs cached ones).
func (n *Node) GC(ctx context.Context, valid []types.GCAttachment) error {
	list, err := n.LoadConfList()
	if err != nil {
		return err
	}
	if err := n.cni().GCNetworkList(ctx, list, &libcni.GCArgs{ValidAttachments: valid}); err != nil {
		return fmt.Errorf("CNI GC on node %s: %w", n.Name, err)
	}
	return nil
}

// Exec runs a command inside the node's namespace and returns its stdout.
func (n *Node) Exec(args ...string) (string, error) {
	return nsExecCommand(n.NetNSName, args...)
}

// Ping sends one echo request from the node namespace (bounded wait).
func (n *Node) Ping(addr string) error {
	return ping(n.NetNSName, addr)
}
