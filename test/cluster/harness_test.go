// Package cluster holds the real-cluster tier: plexus installed with
// `kubectl apply -k` from its own image on two real nodes (kubelet,
// containerd, runc; `make cluster-up`), and the scenarios driven only through
// the API, with real pods.
package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
)

// The cluster's fixed facts (hack/cluster.sh).
const (
	extHost      = "198.51.100.126" // the host outside the cluster on the nodes' segment
	macvlanCIDR  = "198.51.100.64/26"
	nodeUplink   = "eth0"
	toolbox      = "plexus.local/toolbox:latest"
	installLimit = 3 * time.Minute
	podLimit     = 2 * time.Minute
)

var (
	installOnce sync.Once
	installErr  error
)

// cluster connects to the real cluster and makes sure plexus is installed
// there as a user installs it: `kubectl apply --server-side -k` of an
// overlay whose only change to deploy/ is the image.
func cluster(t *testing.T) *testbed.Env {
	t.Helper()
	testbed.RequireRoot(t)
	env := testbed.RequireCluster(t)
	installOnce.Do(func() { installErr = install() })
	if installErr != nil {
		t.Fatalf("installing plexus: %v", installErr)
	}
	return env
}

// install installs plexus as a user does, through hack/cluster.sh install:
// `kubectl apply -k` of deploy/ with only the image set, then rollouts.
func install() error {
	ctx, cancel := context.WithTimeout(context.Background(), installLimit)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(testbed.Root(), "hack", "cluster.sh"), "install").CombinedOutput()
	if err != nil {
		return fmt.Errorf("hack/cluster.sh install: %w\n%s", err, out)
	}
	return nil
}

// sharedHostLocalDir is a host-local dataDir that both nodes see (/tmp is not
// private to a node), so that a host-local NAD never hands one address to
// pods on two nodes. Removed when the test ends.
func sharedHostLocalDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "plexus-cluster-hl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// networkStatus is one entry of k8s.v1.cni.cncf.io/network-status.
type networkStatus struct {
	Name      string   `json:"name"`
	Interface string   `json:"interface"`
	IPs       []string `json:"ips"`
	MAC       string   `json:"mac"`
	Default   bool     `json:"default"`
}

func statusOf(t *testing.T, pod *corev1.Pod) []networkStatus {
	t.Helper()
	raw := pod.Annotations["k8s.v1.cni.cncf.io/network-status"]
	if raw == "" {
		t.Fatalf("pod %s has no network-status annotation", pod.Name)
	}
	var st []networkStatus
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatalf("pod %s: network-status %q: %v", pod.Name, raw, err)
	}
	return st
}

// runningPods waits until n pods matching selector in ns are Running and
// returns them.
func runningPods(t *testing.T, env *testbed.Env, ns, selector string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	poll.Until(t, podLimit, fmt.Sprintf("%d pods %s in %s are Running", n, selector, ns), func() (bool, string) {
		list, err := env.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err.Error()
		}
		pods = pods[:0]
		var states []string
		for _, p := range list.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				pods = append(pods, p)
			}
			states = append(states, p.Name+"="+string(p.Status.Phase))
		}
		return len(pods) == n, strings.Join(states, " ")
	})
	return pods
}

// podEvents returns the reasons and messages of the events about a pod.
func podEvents(t *testing.T, env *testbed.Env, ns, pod string) []corev1.Event {
	t.Helper()
	list, err := env.Client.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + pod,
	})
	if err != nil {
		t.Fatalf("events of %s/%s: %v", ns, pod, err)
	}
	return list.Items
}
