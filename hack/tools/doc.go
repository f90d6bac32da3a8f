// Package tools pins the versions of the third-party programs the plexus
// test bed runs: kube-apiserver and kubectl (k8s.io/kubernetes), etcd
// (go.etcd.io/etcd/server/v3, see cmd/etcd), the reference CNI plugins
// (github.com/containernetworking/plugins) and cnitool
// (github.com/containernetworking/cni). go.mod is the single place where
// these versions live; hack/testbed.sh reads them from there.
package tools
