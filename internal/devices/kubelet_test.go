package devices

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	podresources "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// lister is a PodResources server (the real grpc.Server of serve) whose
// answers the test sets: a nil get or list is Unimplemented.
type lister struct {
	podresources.UnimplementedPodResourcesListerServer
	get   func(context.Context, *podresources.GetPodResourcesRequest) (*podresources.GetPodResourcesResponse, error)
	list  *podresources.ListPodResourcesResponse
	alloc *podresources.AllocatableResourcesResponse

	mu    sync.Mutex
	calls []string
}

func (l *lister) called(m string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, m)
}

func (l *lister) Calls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

func (l *lister) Get(ctx context.Context, req *podresources.GetPodResourcesRequest) (*podresources.GetPodResourcesResponse, error) {
	l.called("Get " + req.PodNamespace + "/" + req.PodName)
	if l.get == nil {
		return nil, status.Error(codes.Unimplemented, "Get is off")
	}
	return l.get(ctx, req)
}

func (l *lister) List(context.Context, *podresources.ListPodResourcesRequest) (*podresources.ListPodResourcesResponse, error) {
	l.called("List")
	if l.list == nil {
		return nil, status.Error(codes.Unimplemented, "no List")
	}
	return l.list, nil
}

func (l *lister) GetAllocatableResources(context.Context, *podresources.AllocatableResourcesRequest) (*podresources.AllocatableResourcesResponse, error) {
	l.called("GetAllocatableResources")
	return l.alloc, nil
}

// Fields this client does not read, set wherever the kubelet sets them.
var (
	topology = &podresources.TopologyInfo{Nodes: []*podresources.NUMANode{{ID: 1}}}
	memory   = []*podresources.ContainerMemory{{MemoryType: "hugepages-1Gi", Size: 1 << 30, Topology: topology}}
)

func dev(resource string, ids ...string) *podresources.ContainerDevices {
	return &podresources.ContainerDevices{ResourceName: resource, DeviceIds: ids, Topology: topology}
}

func podRes(namespace, name string, devs ...*podresources.ContainerDevices) *podresources.PodResources {
	return &podresources.PodResources{Name: name, Namespace: namespace, CpuIds: []int64{2, 3}, Memory: memory,
		Containers: []*podresources.ContainerResources{
			{Name: "init", CpuIds: []int64{1}},
			{Name: "main", Devices: devs, CpuIds: []int64{2, 3}, Memory: memory,
				DynamicResources: []*podresources.DynamicResource{{ClaimName: "c", ClaimNamespace: namespace,
					ClaimResources: []*podresources.ClaimResource{{DriverName: "d", PoolName: "p", DeviceName: "x",
						CdiDevices: []*podresources.CDIDevice{{Name: "d/x=0"}}}}}}},
		}}
}

func TestKubeletGet(t *testing.T) {
	pod := podRes("ns", "p", dev("example.com/vf", "0000:03:00.2", "0000:03:00.1"), dev("example.com/gpu", "gpu0"),
		dev("example.com/vf", "0000:03:00.3"), dev("example.com/none"))
	pod.Containers[0].Devices = []*podresources.ContainerDevices{dev("example.com/vf", "0000:03:00.4")}
	l := &lister{get: func(_ context.Context, req *podresources.GetPodResourcesRequest) (*podresources.GetPodResourcesResponse, error) {
		if req.PodNamespace != "ns" || req.PodName != "p" {
			return nil, status.Error(codes.NotFound, "pod not found")
		}
		return &podresources.GetPodResourcesResponse{PodResources: pod}, nil
	}}
	k := &Kubelet{Socket: serve(t, l)}
	got, err := k.PodDevices(context.Background(), "ns", "p")
	want := map[string][]string{
		"example.com/vf":   {"0000:03:00.4", "0000:03:00.2", "0000:03:00.1", "0000:03:00.3"},
		"example.com/gpu":  {"gpu0"},
		"example.com/none": nil,
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}

	// A pod the kubelet holds nothing for: NotFound, and no List.
	got, err = k.PodDevices(context.Background(), "ns", "q")
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("NotFound: got %#v, %v; want an empty map", got, err)
	}
	if calls, want := l.Calls(), []string{"Get ns/p", "Get ns/q"}; !slices.Equal(calls, want) {
		t.Fatalf("calls %q, want %q", calls, want)
	}

	// Get's pod_resources unset.
	l.get = func(context.Context, *podresources.GetPodResourcesRequest) (*podresources.GetPodResourcesResponse, error) {
		return &podresources.GetPodResourcesResponse{}, nil
	}
	if got, err = k.PodDevices(context.Background(), "ns", "p"); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("empty answer: got %#v, %v; want an empty map", got, err)
	}
}

func TestKubeletListFallback(t *testing.T) {
	l := &lister{list: &podresources.ListPodResourcesResponse{PodResources: []*podresources.PodResources{
		podRes("ns", "other", dev("example.com/vf", "other-name")),
		podRes("ns2", "p", dev("example.com/vf", "other-namespace")),
		podRes("ns", "p", dev("example.com/vf", "mine"), dev("example.com/gpu", "gpu1")),
		podRes("ns", "pp", dev("example.com/vf", "prefix")),
	}}}
	k := &Kubelet{Socket: serve(t, l)}
	got, err := k.PodDevices(context.Background(), "ns", "p")
	want := map[string][]string{"example.com/vf": {"mine"}, "example.com/gpu": {"gpu1"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
	if calls, want := l.Calls(), []string{"Get ns/p", "List"}; !slices.Equal(calls, want) {
		t.Fatalf("calls %q, want %q", calls, want)
	}
	if got, err = k.PodDevices(context.Background(), "ns", "absent"); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("pod not listed: got %#v, %v; want an empty map", got, err)
	}
}

func TestKubeletStatusError(t *testing.T) {
	const msg = "100% denied: ünïcode\nsecond line"
	l := &lister{get: func(context.Context, *podresources.GetPodResourcesRequest) (*podresources.GetPodResourcesResponse, error) {
		return nil, status.Error(codes.PermissionDenied, msg)
	}, list: &podresources.ListPodResourcesResponse{}}
	sock := serve(t, l)
	_, err := (&Kubelet{Socket: sock}).PodDevices(context.Background(), "ns", "p")
	var u *UnavailableError
	var s *statusError
	if !errors.As(err, &u) || u.Socket != sock || !errors.As(err, &s) || s.Code != 7 || s.Message != msg {
		t.Fatalf("err = %v, want an UnavailableError of PermissionDenied %q", err, msg)
	}
	if !strings.Contains(err.Error(), "code = PermissionDenied desc = "+msg) {
		t.Fatalf("err = %q", err)
	}
	if calls := l.Calls(); len(calls) != 1 {
		t.Fatalf("calls %q: only Unimplemented falls back to List", calls)
	}
	// List's error after Get's Unimplemented.
	l.get, l.list = nil, nil
	_, err = (&Kubelet{Socket: sock}).PodDevices(context.Background(), "ns", "p")
	if !errors.As(err, &u) || !hasCode(err, codeUnimplemented) || !strings.Contains(err.Error(), "/List: ") {
		t.Fatalf("err = %v, want List's Unimplemented", err)
	}
}

func TestKubeletAllocatable(t *testing.T) {
	l := &lister{alloc: &podresources.AllocatableResourcesResponse{
		Devices: []*podresources.ContainerDevices{
			dev("example.com/vf", "a", "b"), dev("example.com/gpu", "g"), dev("example.com/vf", "c"), dev("example.com/none")},
		CpuIds: []int64{0, 1, 2, 3},
		Memory: memory,
	}}
	got, err := (&Kubelet{Socket: serve(t, l)}).Allocatable(context.Background())
	want := map[string]int{"example.com/vf": 3, "example.com/gpu": 1, "example.com/none": 0}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
}

func TestKubeletAbsent(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "missing.sock")
	k := &Kubelet{Socket: sock}
	_, err := k.Allocatable(context.Background())
	var u *UnavailableError
	if !errors.As(err, &u) || u.Socket != sock || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err = %v, want an UnavailableError naming %s", err, sock)
	}
	if (&Kubelet{}).socket() != DefaultPodResourcesSocket {
		t.Fatal("no default socket")
	}
}

func TestKubeletTimeout(t *testing.T) {
	l := &lister{get: func(ctx context.Context, _ *podresources.GetPodResourcesRequest) (*podresources.GetPodResourcesResponse, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	k := &Kubelet{Socket: serve(t, l), Timeout: 100 * time.Millisecond}
	start := time.Now()
	_, err := k.PodDevices(context.Background(), "ns", "p")
	var u *UnavailableError
	if !errors.As(err, &u) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want an UnavailableError of the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestKubeletAnswerLimit(t *testing.T) {
	var size int
	answer := func() *podresources.GetPodResourcesResponse {
		return &podresources.GetPodResourcesResponse{PodResources: &podresources.PodResources{Name: "p", Namespace: "ns",
			Containers: []*podresources.ContainerResources{{Devices: []*podresources.ContainerDevices{
				{ResourceName: "r", DeviceIds: []string{strings.Repeat("x", size)}}}}}}}
	}
	l := &lister{get: func(context.Context, *podresources.GetPodResourcesRequest) (*podresources.GetPodResourcesResponse, error) {
		return answer(), nil
	}}
	k := &Kubelet{Socket: serve(t, l)}
	size = maxMessage - 100
	size = maxMessage - (proto.Size(answer()) - size)
	if proto.Size(answer()) != maxMessage {
		t.Fatalf("answer of %d bytes, want %d", proto.Size(answer()), maxMessage)
	}
	got, err := k.PodDevices(context.Background(), "ns", "p")
	if err != nil || len(got["r"]) != 1 || len(got["r"][0]) != size {
		t.Fatalf("answer of the limit's size: %v", err)
	}
	size++
	_, err = k.PodDevices(context.Background(), "ns", "p")
	var u *UnavailableError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "answer of 16777217 bytes, more than the limit") {
		t.Fatalf("err = %v, want the answer refused", err)
	}
}

// serveHTTP2 serves h on a unix socket with cleartext HTTP/2 only.
func serveHTTP2(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "h2.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	s := &http.Server{Handler: h, Protocols: &p}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return sock
}

func frame(flag byte, msg []byte) []byte {
	b := []byte{flag, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// TestGRPCWire checks the request and the reading of answers no grpc
// server sends.
func TestGRPCWire(t *testing.T) {
	req := appendString(nil, 1, "p")
	answer := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), appendString(appendString(nil, 1, "p"), 2, "ns"))
	ok := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Write(frame(0, answer))
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
	}
	for _, tc := range []struct {
		name    string
		handler func(http.ResponseWriter)
		want    string // in the error; "" for answer
		code    int
	}{
		{name: "ok", handler: ok},
		{name: "not 200", want: "HTTP status 503", handler: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc")
			w.WriteHeader(http.StatusServiceUnavailable)
		}},
		{name: "not grpc", want: "not a gRPC answer", handler: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/plain")
			w.Write([]byte("hello"))
		}},
		{name: "trailers-only status", code: codeUnimplemented, want: "code = Unimplemented desc = unknown method Get", handler: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", "12")
			w.Header().Set("Grpc-Message", "unknown method Get")
		}},
		{name: "status in trailers", code: codeNotFound, want: "code = NotFound desc = pod 100% gone", handler: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			w.Header().Set(http.TrailerPrefix+"Grpc-Status", "5")
			w.Header().Set(http.TrailerPrefix+"Grpc-Message", "pod 100%25 gone")
		}},
		{name: "error after the message", code: 13, want: "code = Internal desc = %zz", handler: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Write(frame(0, answer))
			w.Header().Set(http.TrailerPrefix+"Grpc-Status", "13")
			w.Header().Set(http.TrailerPrefix+"Grpc-Message", "%zz")
		}},
		{name: "unknown code", code: 99, want: "code = Code(99)", handler: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", "99")
		}},
		{name: "no status", want: "missing grpc-status", handler: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Write(frame(0, answer))
		}},
		{name: "bad status", want: "bad or missing grpc-status \"OK\"", handler: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", "OK")
		}},
		{name: "OK without message", want: "without an answer", handler: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", "0")
		}},
		{name: "compressed", want: "compressed", handler: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Write(frame(1, answer))
			w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		}},
		{name: "over the limit", want: "16777217 bytes, more than the limit", handler: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Write([]byte{0, 1, 0, 0, 1}) // announced, never sent
			w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		}},
		{name: "cut short", want: "answer cut short: unexpected EOF", handler: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Write(frame(0, answer)[:8])
			w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		}},
		{name: "cut prefix", want: "unexpected EOF", handler: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Write([]byte{0, 0})
			w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		}},
		{name: "two messages", want: "more than one message", handler: func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Write(append(frame(0, answer), frame(0, answer)...))
			w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := serveHTTP2(t, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				if r.ProtoMajor != 2 || r.Method != http.MethodPost || r.URL.Path != "/"+methodGet ||
					r.Header.Get("Content-Type") != "application/grpc" || r.Header.Get("Te") != "trailers" ||
					!slices.Equal(body, frame(0, req)) {
					t.Errorf("request %s %s %s %v %q", r.Proto, r.Method, r.URL, r.Header, body)
				}
				tc.handler(w)
			})
			c := newGRPCClient(sock)
			defer c.Close()
			got, err := c.call(context.Background(), methodGet, req)
			if tc.want == "" {
				if err != nil || !slices.Equal(got, answer) {
					t.Fatalf("got %q, %v; want %q", got, err, answer)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			var s *statusError
			if errors.As(err, &s) != (tc.code != 0) || tc.code != 0 && s.Code != tc.code {
				t.Fatalf("err = %#v, want code %d", err, tc.code)
			}
		})
	}
}

// TestKubeletBadAnswer sends the client a malformed protobuf answer.
func TestKubeletBadAnswer(t *testing.T) {
	sock := serveHTTP2(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Write(frame(0, []byte{0x0a, 0x05, 0x0a, 0x01}))
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
	})
	_, err := (&Kubelet{Socket: sock}).PodDevices(context.Background(), "ns", "p")
	var u *UnavailableError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "bad protobuf") {
		t.Fatalf("err = %v, want a bad protobuf error", err)
	}
	_, err = (&Kubelet{Socket: sock}).Allocatable(context.Background())
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "bad protobuf") {
		t.Fatalf("Allocatable: err = %v, want a bad protobuf error", err)
	}
}

func TestDecodePod(t *testing.T) {
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	bytesField := func(b []byte, num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(tag(b, num, protowire.BytesType), v)
	}
	// Unknown fields of every wire type, and a known number with another
	// wire type, are skipped.
	var unknown []byte
	unknown = protowire.AppendVarint(tag(unknown, 9, protowire.VarintType), 300)
	unknown = protowire.AppendFixed32(tag(unknown, 10, protowire.Fixed32Type), 7)
	unknown = protowire.AppendFixed64(tag(unknown, 11, protowire.Fixed64Type), 7)
	unknown = tag(unknown, 12, protowire.StartGroupType)
	unknown = bytesField(protowire.AppendVarint(tag(unknown, 1, protowire.VarintType), 5), 2, []byte("in a group"))
	unknown = tag(unknown, 12, protowire.EndGroupType)
	unknown = bytesField(unknown, 13, []byte{0xff})
	unknown = protowire.AppendVarint(tag(unknown, 1, protowire.VarintType), 1)

	devs := bytesField(append(slices.Clone(unknown), appendString(nil, 1, "r")...), 2, []byte("id1"))
	devs = bytesField(devs, 2, []byte("id2"))
	container := bytesField(appendString(unknown, 1, "c"), 2, devs)
	pod := bytesField(appendString(appendString(unknown, 1, "p"), 2, "ns"), 3, container)
	pod = bytesField(pod, 3, bytesField(nil, 2, appendString(nil, 1, "r")))
	got, err := decodePod(pod)
	if err != nil || got.namespace != "ns" || got.name != "p" || !reflect.DeepEqual(got.devices, map[string][]string{"r": {"id1", "id2"}}) {
		t.Fatalf("got %+v, %v", got, err)
	}

	for name, b := range map[string][]byte{
		"truncated tag":        {0x80},
		"field number 0":       {0x02, 0x00},
		"length beyond":        {0x0a, 0x05, 'a'},
		"truncated varint":     protowire.AppendVarint(tag(nil, 9, protowire.VarintType), 300)[:2],
		"varint overflow":      append(tag(nil, 9, protowire.VarintType), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"varint over 64 bits":  append(tag(nil, 9, protowire.VarintType), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02),
		"truncated fixed64":    append(tag(nil, 9, protowire.Fixed64Type), 1, 2, 3),
		"stray end group":      tag(nil, 9, protowire.EndGroupType),
		"unterminated group":   tag(nil, 9, protowire.StartGroupType),
		"mismatched end group": tag(tag(nil, 9, protowire.StartGroupType), 8, protowire.EndGroupType),
		"reserved wire type":   {9<<3 | 6},
		"name not UTF-8":       bytesField(nil, 1, []byte{0xff}),
		"namespace not UTF-8":  bytesField(nil, 2, []byte("n\xc3")),
		"bad container":        bytesField(nil, 3, []byte{0x12, 0x03, 0x0a, 0x05, 'x'}),
		"bad devices":          bytesField(nil, 3, bytesField(nil, 2, []byte{0x0a})),
		"device id not UTF-8":  bytesField(nil, 3, bytesField(nil, 2, bytesField(nil, 2, []byte{0xc0, 0x80}))),
		"resource not UTF-8":   bytesField(nil, 3, bytesField(nil, 2, bytesField(nil, 1, []byte{0xfe}))),
	} {
		if p, err := decodePod(b); err == nil {
			t.Errorf("%s: decoded % x as %+v", name, b, p)
		}
	}
}
