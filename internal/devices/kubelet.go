package devices

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
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
//
// It speaks gRPC and protobuf by hand (grpcwire.go, protobuf.go and the decoders
// below, which read only the fields used here): the plexus CNI binary links
// this package, and linking google.golang.org/grpc and the generated
// k8s.io/kubelet/pkg/apis/podresources/v1 would cost every exec their
// package initialisation.
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

// The PodResourcesLister methods (k8s.io/kubelet/pkg/apis/podresources/v1).
const (
	methodGet         = "v1.PodResourcesLister/Get"
	methodList        = "v1.PodResourcesLister/List"
	methodAllocatable = "v1.PodResourcesLister/GetAllocatableResources"
)

// PodDevices returns the device IDs by resource of every container of the
// pod, from the kubelet's Get (List, filtered, from a kubelet without Get).
func (k *Kubelet) PodDevices(ctx context.Context, namespace, name string) (map[string][]string, error) {
	ctx, cancel, c := k.dial(ctx)
	defer cancel()
	defer c.Close()
	pod, err := getPod(ctx, c, namespace, name)
	if err != nil {
		return nil, &UnavailableError{k.socket(), err}
	}
	if pod == nil {
		return map[string][]string{}, nil
	}
	return pod.devices, nil
}

func (k *Kubelet) socket() string {
	if k.Socket == "" {
		return DefaultPodResourcesSocket
	}
	return k.Socket
}

// dial returns ctx bounded by the timeout and a client of the socket.
func (k *Kubelet) dial(ctx context.Context) (context.Context, context.CancelFunc, *grpcClient) {
	timeout := k.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return ctx, cancel, newGRPCClient(k.socket())
}

// getPod asks for one pod; a kubelet without Get (older, or the feature
// gate off) answers Unimplemented, and then the whole list is read. A pod
// the kubelet holds no resources for is nil.
func getPod(ctx context.Context, c *grpcClient, namespace, name string) (*podResources, error) {
	// GetPodResourcesRequest: pod_name = 1, pod_namespace = 2.
	var req []byte
	req = appendString(req, 1, name)
	req = appendString(req, 2, namespace)
	resp, err := c.call(ctx, methodGet, req)
	switch {
	case err == nil:
		var pod *podResources
		// GetPodResourcesResponse: pod_resources = 1.
		err := eachField(resp, func(num int, v []byte) (err error) {
			if num == 1 {
				pod, err = decodePod(v)
			}
			return err
		})
		return pod, err
	case hasCode(err, codeNotFound):
		return nil, nil
	case !hasCode(err, codeUnimplemented):
		return nil, err
	}
	resp, err = c.call(ctx, methodList, nil) // ListPodResourcesRequest{}
	if err != nil {
		return nil, err
	}
	var pod *podResources
	// ListPodResourcesResponse: repeated pod_resources = 1.
	err = eachField(resp, func(num int, v []byte) error {
		if num != 1 {
			return nil
		}
		p, err := decodePod(v)
		if err == nil && pod == nil && p.namespace == namespace && p.name == name {
			pod = p
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return pod, nil
}

// Allocatable returns how many devices of each resource the node offers
// (device plugins only; DRA devices are in ResourceSlices).
func (k *Kubelet) Allocatable(ctx context.Context) (map[string]int, error) {
	ctx, cancel, c := k.dial(ctx)
	defer cancel()
	defer c.Close()
	resp, err := c.call(ctx, methodAllocatable, nil) // AllocatableResourcesRequest{}
	out := map[string]int{}
	if err == nil {
		// AllocatableResourcesResponse: repeated devices = 1.
		err = eachField(resp, func(num int, v []byte) error {
			if num != 1 {
				return nil
			}
			resource, ids, err := decodeDevices(v)
			out[resource] += len(ids)
			return err
		})
	}
	if err != nil {
		return nil, &UnavailableError{k.socket(), err}
	}
	return out, nil
}

// podResources is what is read of a PodResources message.
type podResources struct {
	namespace, name string
	devices         map[string][]string // of all containers, by resource
}

// decodePod decodes PodResources{name = 1, namespace = 2, repeated
// ContainerResources containers = 3} and, in each container,
// ContainerResources{repeated ContainerDevices devices = 2}.
func decodePod(b []byte) (*podResources, error) {
	p := &podResources{devices: map[string][]string{}}
	err := eachField(b, func(num int, v []byte) (err error) {
		switch num {
		case 1:
			p.name, err = protoString(v)
		case 2:
			p.namespace, err = protoString(v)
		case 3:
			err = eachField(v, func(num int, v []byte) error {
				if num != 2 {
					return nil
				}
				resource, ids, err := decodeDevices(v)
				p.devices[resource] = append(p.devices[resource], ids...)
				return err
			})
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// decodeDevices decodes ContainerDevices{resource_name = 1, repeated
// device_ids = 2}.
func decodeDevices(b []byte) (resource string, ids []string, err error) {
	err = eachField(b, func(num int, v []byte) error {
		switch num {
		case 1:
			s, err := protoString(v)
			resource = s
			return err
		case 2:
			s, err := protoString(v)
			ids = append(ids, s)
			return err
		}
		return nil
	})
	return resource, ids, err
}

// eachField calls fn with the number and value of every length-delimited
// field of the protobuf message b (strings and embedded messages: all that
// is read here), in order. Other fields are skipped, as are fields with a
// wire type their number does not have, as protobuf does with unknown
// fields.
func eachField(b []byte, fn func(num int, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errProto
		}
		b = b[n:]
		if typ != wireBytes {
			n = skipValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("%w: field %d", errProto, num)
			}
			b = b[n:]
			continue
		}
		v, n := consumeBytes(b)
		if n < 0 {
			return fmt.Errorf("%w: field %d", errProto, num)
		}
		b = b[n:]
		if err := fn(num, v); err != nil {
			return err
		}
	}
	return nil
}

// protoString is a proto3 string field's value, which must be UTF-8.
func protoString(v []byte) (string, error) {
	if !utf8.Valid(v) {
		return "", errors.New("bad protobuf: string field is not UTF-8")
	}
	return string(v), nil
}

// appendString appends a proto3 string field (none if s is empty).
func appendString(b []byte, num int, s string) []byte {
	if s == "" {
		return b
	}
	b = appendVarint(b, uint64(num)<<3|wireBytes)
	return append(appendVarint(b, uint64(len(s))), s...)
}
