package nodesim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// cleanupTimeout bounds the teardown of one pod in t.Cleanup.
const cleanupTimeout = 2 * time.Minute

// PodSpec describes a pod to run on a node.
type PodSpec struct {
	// Namespace defaults to "default"; Name defaults to a random name.
	Namespace string
	Name      string
	// Annotations and Labels go onto the Pod object.
	Annotations map[string]string
	Labels      map[string]string
	// IfName is CNI_IFNAME (default "eth0").
	IfName string
	// ExtraArgs are appended to the CNI_ARGS the runtime passes.
	ExtraArgs [][2]string
	// CapabilityArgs are the runtime's capability arguments.
	CapabilityArgs map[string]any
	// SkipPodObject disables creating a Pod object even with a Client.
	SkipPodObject bool
	// UID is the pod UID used when no Pod object is created (default:
	// random).
	UID string
}

// Pod is a pod sandbox on a simulated node.
type Pod struct {
	Name      string
	Namespace string
	UID       string
	// SandboxID is the CNI_CONTAINERID (64 hex characters).
	SandboxID string
	NetNSPath string
	NetNSName string
	IfName    string
	// Result is the result of the CNI ADD (nil if ADD failed).
	Result types.Result
	Node   *Node
	// AddDuration is how long the CNI ADD itself took (no netns or API
	// object work), for benchmarks.
	AddDuration time.Duration

	list      *libcni.NetworkConfigList
	rt        *libcni.RuntimeConf
	hasObject bool
	added     bool // ADD was attempted, so a DEL is owed

	mu      sync.Mutex // guards removed
	removed bool
}

// RunPod creates the Pod object (when the node has a Client and
// !spec.SkipPodObject), the pod network namespace, and runs CNI ADD for the
// node's network configuration as containerd would. The pod is removed in
// t.Cleanup (DEL, namespace, Pod object). When ADD fails, RunPod returns the
// Pod together with the error, so the test can inspect the sandbox; the
// cleanup still issues a DEL, as a runtime would.
func (n *Node) RunPod(ctx context.Context, t testing.TB, spec PodSpec) (*Pod, error) {
	t.Helper()
	list, err := n.LoadConfList()
	if err != nil {
		return nil, fmt.Errorf("run pod: %w", err)
	}
	p := newPod(n, spec, list)
	t.Cleanup(func() { p.cleanup(t) })
	if n.Client != nil && !spec.SkipPodObject {
		if err := p.createObject(ctx, spec); err != nil {
			return nil, err
		}
	}
	nsName, err := createNetNS("plx-p")
	p.NetNSName, p.NetNSPath = nsName, netnsPath(nsName)
	if err != nil {
		return nil, fmt.Errorf("run pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	p.rt = p.runtimeConf(spec)
	p.added = true
	start := time.Now()
	result, err := n.cni().AddNetworkList(ctx, list, p.rt)
	p.AddDuration = time.Since(start)
	if err != nil {
		return p, fmt.Errorf("CNI ADD for pod %s/%s on node %s: %w", p.Namespace, p.Name, n.Name, err)
	}
	p.Result = result
	return p, nil
}

func newPod(n *Node, spec PodSpec, list *libcni.NetworkConfigList) *Pod {
	p := &Pod{
		Name:      spec.Name,
		Namespace: spec.Namespace,
		UID:       spec.UID,
		SandboxID: randomHex(32),
		IfName:    spec.IfName,
		Node:      n,
		list:      list,
	}
	if p.Namespace == "" {
		p.Namespace = "default"
	}
	if p.Name == "" {
		p.Name = "pod-" + randomHex(4)
	}
	if p.UID == "" {
		p.UID = randomUID()
	}
	if p.IfName == "" {
		p.IfName = "eth0"
	}
	return p
}

// createObject creates the Pod object bound to the node and records its UID.
func (p *Pod) createObject(ctx context.Context, spec PodSpec) error {
	obj := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        p.Name,
			Namespace:   p.Namespace,
			Annotations: spec.Annotations,
			Labels:      spec.Labels,
		},
		Spec: corev1.PodSpec{
			NodeName:   p.Node.Name,
			Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/pause"}},
		},
	}
	created, err := p.Node.Client.CoreV1().Pods(p.Namespace).Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create pod object %s/%s: %w", p.Namespace, p.Name, err)
	}
	p.hasObject = true
	p.UID = string(created.UID)
	return nil
}

// runtimeConf builds the per-attachment parameters containerd would pass.
func (p *Pod) runtimeConf(spec PodSpec) *libcni.RuntimeConf {
	args := [][2]string{
		{"IgnoreUnknown", "1"},
		{"K8S_POD_NAMESPACE", p.Namespace},
		{"K8S_POD_NAME", p.Name},
		{"K8S_POD_INFRA_CONTAINER_ID", p.SandboxID},
		{"K8S_POD_UID", p.UID},
	}
	return &libcni.RuntimeConf{
		ContainerID:    p.SandboxID,
		NetNS:          p.NetNSPath,
		IfName:         p.IfName,
		Args:           append(args, spec.ExtraArgs...),
		CapabilityArgs: spec.CapabilityArgs,
	}
}

// Attachment returns the pod's (container ID, ifname) pair, e.g. for GC.
func (p *Pod) Attachment() types.GCAttachment {
	return types.GCAttachment{ContainerID: p.SandboxID, IfName: p.IfName}
}

// Del runs CNI DEL with the same parameters as the ADD.
func (p *Pod) Del(ctx context.Context) error {
	if p.rt == nil {
		return errors.New("pod has no sandbox")
	}
	if err := p.Node.cni().DelNetworkList(ctx, p.list, p.rt); err != nil {
		return fmt.Errorf("CNI DEL for pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// Attach runs ADD of another network on the pod's sandbox with interface
// ifname, as a runtime configured with several networks would. Its DEL is
// the caller's (Detach).
func (p *Pod) Attach(ctx context.Context, list *libcni.NetworkConfigList, ifname string) (types.Result, error) {
	if p.rt == nil {
		return nil, errors.New("pod has no sandbox")
	}
	rt := *p.rt
	rt.IfName = ifname
	res, err := p.Node.cni().AddNetworkList(ctx, list, &rt)
	if err != nil {
		return nil, fmt.Errorf("CNI ADD of %s as %s for pod %s/%s: %w", list.Name, ifname, p.Namespace, p.Name, err)
	}
	return res, nil
}

// Detach runs DEL of a network added with Attach.
func (p *Pod) Detach(ctx context.Context, list *libcni.NetworkConfigList, ifname string) error {
	if p.rt == nil {
		return errors.New("pod has no sandbox")
	}
	rt := *p.rt
	rt.IfName = ifname
	if err := p.Node.cni().DelNetworkList(ctx, list, &rt); err != nil {
		return fmt.Errorf("CNI DEL of %s as %s for pod %s/%s: %w", list.Name, ifname, p.Namespace, p.Name, err)
	}
	return nil
}

// Check runs CNI CHECK with the same parameters as the ADD.
func (p *Pod) Check(ctx context.Context) error {
	if p.rt == nil {
		return errors.New("pod has no sandbox")
	}
	if err := p.Node.cni().CheckNetworkList(ctx, p.list, p.rt); err != nil {
		return fmt.Errorf("CNI CHECK for pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// Remove tears the pod down: CNI DEL, the network namespace, then the Pod
// object. Later calls return nil.
func (p *Pod) Remove(ctx context.Context) error {
	delErr, err := p.teardown(ctx)
	return errors.Join(delErr, err)
}

// teardown separates the best-effort DEL error from failures to remove the
// namespace or the Pod object.
func (p *Pod) teardown(ctx context.Context) (delErr, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.removed {
		return nil, nil
	}
	p.removed = true
	if p.added {
		delErr = p.Del(ctx)
	}
	errs := []error{deleteNetNS(p.NetNSName)}
	if p.hasObject {
		errs = append(errs, p.deleteObject(ctx))
	}
	return delErr, errors.Join(errs...)
}

func (p *Pod) deleteObject(ctx context.Context) error {
	zero := int64(0)
	err := p.Node.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name,
		metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete pod object %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// cleanup is registered with t.Cleanup: a failed DEL is logged (best
// effort), anything left behind fails the test.
func (p *Pod) cleanup(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	delErr, err := p.teardown(ctx)
	if delErr != nil {
		t.Logf("cleanup of pod %s/%s: %v", p.Namespace, p.Name, delErr)
	}
	if err != nil {
		t.Errorf("cleanup of pod %s/%s: %v", p.Namespace, p.Name, err)
	}
}

// Object re-reads the Pod object.
func (p *Pod) Object(ctx context.Context) (*corev1.Pod, error) {
	if p.Node.Client == nil || !p.hasObject {
		return nil, errors.New("pod has no Pod object")
	}
	obj, err := p.Node.Client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return obj, nil
}
