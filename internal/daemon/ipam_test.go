package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/types/create"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/daemon/client"
	"github.com/plexus-cni/plexus/internal/daemon/server"
	"github.com/plexus-cni/plexus/internal/daemon/wire"
	"github.com/plexus-cni/plexus/pkg/ipam/config"
	ipamplugin "github.com/plexus-cni/plexus/pkg/ipam/plugin"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/memstore"
)

// testLog logs a request's lines through the test.
type testLog struct{ t *testing.T }

func (l testLog) Debugf(format string, args ...any) { l.t.Logf("[debug] "+format, args...) }
func (l testLog) Infof(format string, args ...any)  { l.t.Logf("[verbose] "+format, args...) }
func (l testLog) Errorf(format string, args ...any) { l.t.Logf("[error] "+format, args...) }
func (l testLog) Close() error                      { return nil }

// ipamDaemon serves /ipam on a socket with the handler plexusd uses, its
// stores opened by open and its requests' logs by openLog (nil: the
// test's); it returns the socket and the server.
func ipamDaemon(t *testing.T, open func(*config.Conf, ipamplugin.Logf) (store.Store, error),
	openLog func(level, file string) ipamplugin.Logger, o server.Options) (string, *server.Server) {
	t.Helper()
	base := ipamplugin.Default()
	base.Loader = config.Loader{Files: config.OSFiles{}}
	base.OpenLog = openLog
	if openLog == nil {
		base.OpenLog = func(string, string) ipamplugin.Logger { return testLog{t} }
	}
	d := ipamplugin.NewDaemon(base, t.Logf, ipamplugin.DaemonOptions{})
	d.Stores.Open = open
	o.IPAM = &server.Endpoint{Handler: ipamHandler{d}}
	s := server.New(nil, o)
	socket := filepath.Join(t.TempDir(), "plexusd.sock")
	l, err := server.Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return socket, s
}

// ipamConf is a network whose store is identified by the kubeconfig kc.
func ipamConf(t *testing.T, kc string) []byte {
	t.Helper()
	if err := os.WriteFile(kc, []byte("token: "+filepath.Base(kc)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []byte(`{"cniVersion":"1.0.0","name":"net","ipam":{"type":"plexus-ipam","range":"198.51.100.0/28",
		"kubernetes":{"kubeconfig":"` + kc + `"}}}`)
}

func ipamAdd(cid, pod string, conf []byte, env map[string]string) *wire.Request {
	return &wire.Request{Command: "ADD", ContainerID: cid, IfName: "net1", Netns: "/run/netns/x",
		Args: "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=" + pod + ";K8S_POD_UID=uid-" + pod, Config: conf, Env: env}
}

func call(t *testing.T, socket string, req *wire.Request) *wire.Response {
	t.Helper()
	resp, err := (&client.Client{Path: wire.IPAMPath}).Call(context.Background(), socket, req)
	if err != nil {
		t.Errorf("%s %s: %v", req.Command, req.ContainerID, err)
		return &wire.Response{}
	}
	return resp
}

// Two IPAM requests in flight at once, each with its own node (env) and
// pod UID (CNI_ARGS), record their own: nothing of a request goes through
// the daemon's process environment or other shared state. Both wait,
// after the daemon took them and before they name
// their node (opening their log), until both are there.
func TestConcurrentIPAMRequestsKeepTheirOwnData(t *testing.T) {
	mem := memstore.New()
	arrived, release := make(chan struct{}, 2), make(chan struct{})
	open := func(*config.Conf, ipamplugin.Logf) (store.Store, error) { return mem, nil }
	openLog := func(string, string) ipamplugin.Logger {
		arrived <- struct{}{}
		<-release
		return testLog{t}
	}
	socket, _ := ipamDaemon(t, open, openLog, server.Options{})
	conf := ipamConf(t, filepath.Join(t.TempDir(), "kc"))
	reqs := map[string]*wire.Request{
		"c-a": ipamAdd("c-a", "pod-a", conf, map[string]string{"NODE_NAME": "node-a"}),
		"c-b": ipamAdd("c-b", "pod-b", conf, map[string]string{"NODENAME": "node-b"}),
	}
	var mu sync.Mutex
	answers := map[string]*wire.Response{}
	var wg sync.WaitGroup
	for cid, req := range reqs {
		wg.Go(func() {
			resp := call(t, socket, req)
			mu.Lock()
			defer mu.Unlock()
			answers[cid] = resp
		})
	}
	for range reqs {
		select {
		case <-arrived:
		case <-time.After(time.Minute):
			close(release)
			t.Fatal("the two requests were never in flight together")
		}
	}
	close(release)
	wg.Wait()
	held, err := mem.List(t.Context(), store.Filter{})
	if err != nil || len(held) != 2 {
		t.Fatalf("allocations: %+v %v, want one per request", held, err)
	}
	for _, a := range held {
		pod := strings.TrimPrefix(a.ContainerID, "c-")
		if a.Node != "node-"+pod || a.PodUID != "uid-pod-"+pod || a.PodName != "pod-"+pod {
			t.Errorf("%s recorded node %q, pod %q, UID %q; want its own request's", a.ContainerID, a.Node, a.PodName, a.PodUID)
		}
		if got := answeredAddress(t, answers[a.ContainerID]); got != a.Address.String() {
			t.Errorf("%s was answered %s, holds %s", a.ContainerID, got, a.Address)
		}
	}
}

func answeredAddress(t *testing.T, r *wire.Response) string {
	t.Helper()
	if r == nil || r.Error != nil {
		t.Fatalf("answer: %+v", r)
	}
	res, err := create.CreateFromBytes(r.Result)
	if err != nil {
		t.Fatalf("result %s: %v", r.Result, err)
	}
	cur, err := current.NewResultFromResult(res)
	if err != nil || len(cur.IPs) != 1 {
		t.Fatalf("result %s: %v", r.Result, err)
	}
	return cur.IPs[0].Address.IP.String()
}

// hangingStore is a memstore whose Allocate waits until its context ends,
// as a call to an unreachable API server does.
type hangingStore struct {
	*memstore.Store
	started chan struct{}
}

func (h hangingStore) Allocate(ctx context.Context, req store.Request) (store.Allocation, error) {
	h.started <- struct{}{}
	<-ctx.Done()
	return h.Store.Allocate(ctx, req)
}

// The daemon's bound of a request (requestTimeoutSeconds) and its shutdown
// reach the store calls of an IPAM request: it is answered with code 11
// and leaves nothing allocated.
func TestIPAMStoreCallsEndWithTheRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		// end ends the request once its store call hangs (nil: its timeout).
		end func(s *server.Server)
	}{
		{"request timeout", 100 * time.Millisecond, nil},
		{"shutdown", time.Hour, func(s *server.Server) {
			expired, cancel := context.WithCancel(context.Background())
			cancel()
			go func() { _ = s.Shutdown(expired) }()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := hangingStore{Store: memstore.New(), started: make(chan struct{}, 1)}
			open := func(*config.Conf, ipamplugin.Logf) (store.Store, error) { return hs, nil }
			socket, s := ipamDaemon(t, open, nil, server.Options{RequestTimeout: tc.timeout})
			answer := make(chan *wire.Response, 1)
			conf := ipamConf(t, filepath.Join(t.TempDir(), "kc"))
			go func() { answer <- call(t, socket, ipamAdd("c1", "p", conf, nil)) }()
			<-hs.started
			if tc.end != nil {
				tc.end(s)
			}
			var r *wire.Response
			select {
			case r = <-answer:
			case <-time.After(time.Minute):
				t.Fatal("no answer a minute after the request ended: its context does not reach the store")
			}
			if r.Error == nil || r.Error.Code != cnierr.TryAgainLater {
				t.Errorf("answer %+v, want code 11", r.Error)
			}
			if held, _ := hs.List(t.Context(), store.Filter{}); len(held) != 0 {
				t.Errorf("the ended request left %+v allocated", held)
			}
		})
	}
}
