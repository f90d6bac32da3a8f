// Package nodesim simulates Kubernetes nodes for integration tests: it plays
// kubelet and the container runtime on one machine using real network
// namespaces.
//
// A Switch is an L2 segment (a namespace holding a Linux bridge). Hosts are
// namespaces on that segment standing for machines outside the cluster. A
// Node is a namespace whose uplink is plugged into the switch; it has its own
// CNI configuration, cache and state directories. Node.RunPod creates a pod
// network namespace and runs CNI ADD through libcni the way containerd does,
// with every plugin process executed inside the node's namespace.
//
// Everything the package creates is removed through testing.TB.Cleanup, also
// when the test fails. Namespaces carry a "plx-" prefix and a random suffix.
// The package needs root and the iproute2, util-linux (nsenter) and iputils
// (ping) commands.
package nodesim
