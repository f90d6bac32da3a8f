package devices

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	podresources "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// Kubelet defaults.
const (
	// DefaultPodResourcesSocket is where the kubelet serves PodResources.
	DefaultPodResourcesSocket = "/var/lib/kubelet/pod-resources/kubelet.sock"
	// DefaultTimeout bounds one question to the kubelet (Multus's 10 s).
	DefaultTimeout = 10 * time.Second
	// maxMessage is the kubelet's own limit for PodResources answers.
	maxMessage = 16 << 20
)

// Kubelet asks the kubelet's PodResources v1 API over its unix socket.
type Kubelet struct {
	// Socket is the pod-resources socket (DefaultPodResourcesSocket if "").
	Socket string
	// Timeout bounds the question (DefaultTimeout if 0).
	Timeout time.Duration
}

// UnavailableError reports that the kubelet could not be asked: the socket
// is missing, refuses, or the answer did not come in time. It is
// retryable: the kubelet may be restarting.
type UnavailableError struct {
	Socket string
	Err    error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("kubelet pod-resources socket %s: %v", e.Socket, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// PodDevices returns the device IDs by resource of every container of the
// pod, from the kubelet's Get (List, filtered, from a kubelet without Get).
func (k *Kubelet) PodDevices(ctx context.Context, namespace, name string) (map[string][]string, error) {
	conn, ctx, cancel, err := k.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer conn.Close()
	pod, err := getPod(ctx, podresources.NewPodResourcesListerClient(conn), namespace, name)
	if err != nil {
		return nil, &UnavailableError{k.socket(), err}
	}
	out := map[string][]string{}
	for _, c := range pod.GetContainers() {
		for _, d := range c.GetDevices() {
			out[d.GetResourceName()] = append(out[d.GetResourceName()], d.GetDeviceIds()...)
		}
	}
	return out, nil
}

func (k *Kubelet) socket() string {
	if k.Socket == "" {
		return DefaultPodResourcesSocket
	}
	return k.Socket
}

// dial returns a client of the socket and ctx bounded by the timeout.
func (k *Kubelet) dial(ctx context.Context) (*grpc.ClientConn, context.Context, context.CancelFunc, error) {
	timeout := k.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	conn, err := grpc.NewClient("unix://"+k.socket(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage)))
	if err != nil {
		return nil, nil, nil, &UnavailableError{k.socket(), err}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return conn, ctx, cancel, nil
}

// getPod asks for one pod; a kubelet without Get (older, or the feature
// gate off) answers Unimplemented, and then the whole list is read.
func getPod(ctx context.Context, cl podresources.PodResourcesListerClient, namespace, name string) (*podresources.PodResources, error) {
	resp, err := cl.Get(ctx, &podresources.GetPodResourcesRequest{PodName: name, PodNamespace: namespace})
	if err == nil {
		return resp.GetPodResources(), nil
	}
	switch status.Code(err) {
	case codes.NotFound:
		return nil, nil // a pod the kubelet holds no resources for
	case codes.Unimplemented:
	default:
		return nil, err
	}
	list, err := cl.List(ctx, &podresources.ListPodResourcesRequest{})
	if err != nil {
		return nil, err
	}
	for _, p := range list.GetPodResources() {
		if p.GetNamespace() == namespace && p.GetName() == name {
			return p, nil
		}
	}
	return nil, nil
}

// Allocatable returns how many devices of each resource the node offers
// (device plugins only; DRA devices are in ResourceSlices).
func (k *Kubelet) Allocatable(ctx context.Context) (map[string]int, error) {
	conn, ctx, cancel, err := k.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer conn.Close()
	resp, err := podresources.NewPodResourcesListerClient(conn).GetAllocatableResources(ctx, &podresources.AllocatableResourcesRequest{})
	if err != nil {
		return nil, &UnavailableError{k.socket(), err}
	}
	out := map[string]int{}
	for _, d := range resp.GetDevices() {
		out[d.GetResourceName()] += len(d.GetDeviceIds())
	}
	return out, nil
}
