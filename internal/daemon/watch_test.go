package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/plexus-cni/plexus/internal/config"
	"github.com/plexus-cni/plexus/internal/daemon/metrics"
	"github.com/plexus-cni/plexus/internal/daemon/options"
	"github.com/plexus-cni/plexus/internal/logging"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// watched is one resource plexusd's informers follow on the fake API
// server: its collection's path, the kind of its list and the object
// sent on its watch once the test releases it.
type watched struct {
	path, apiVersion, kind string
	obj                    map[string]any
}

func meta(ns, name string, labels map[string]any) map[string]any {
	return map[string]any{"namespace": ns, "name": name, "uid": "uid-" + name, "resourceVersion": "2", "labels": labels}
}

var watchedResources = []watched{
	{"/api/v1/pods", "v1", "Pod", map[string]any{
		"metadata": meta("ns", "p", nil), "spec": map[string]any{"nodeName": "n1"}}},
	{"/apis/" + nad.Group + "/" + nad.Version + "/" + nad.Resource, nad.Group + "/" + nad.Version, "NetworkAttachmentDefinition", map[string]any{
		"metadata": meta("ns", "macvlan", nil), "spec": map[string]any{"config": `{"cniVersion":"1.0.0","type":"macvlan"}`}}},
	{"/apis/" + v1.Group + "/" + v1.Version + "/namespaces/ipam/" + v1.ResourceIPAllocations, v1.Group + "/" + v1.Version, "IPAllocation", map[string]any{
		"metadata": meta("ipam", "a1", map[string]any{v1.LabelNode: "n1"}), "spec": map[string]any{"space": "net:a"}}},
}

// fakeAPI answers plexusd's informers: every list is empty; a watch stays
// open and, if it was opened before release is closed, then sends its
// resource's object (a watch re-opened later sends nothing, so the object
// arrives only through a watch that outlived the wait). A GET of the pod
// ns/slow never answers; anything else is 404.
type fakeAPI struct {
	release chan struct{}
	opened  chan string // a watch's path, as it opens

	mu      sync.Mutex
	watches map[string]int // watch requests by path
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/v1/namespaces/ns/pods/slow" {
		<-r.Context().Done()
		return
	}
	for _, res := range watchedResources {
		if r.URL.Path != res.path {
			continue
		}
		w.Header().Set("Content-Type", "application/json")
		q := r.URL.Query()
		if q.Get("watch") != "true" && q.Get("watch") != "1" {
			fmt.Fprintf(w, `{"apiVersion":%q,"kind":"%sList","metadata":{"resourceVersion":"1"},"items":[]}`, res.apiVersion, res.kind)
			return
		}
		f.watch(w, r, res)
		return
	}
	http.NotFound(w, r)
}

func (f *fakeAPI) watch(w http.ResponseWriter, r *http.Request, res watched) {
	f.mu.Lock()
	f.watches[res.path]++
	f.mu.Unlock()
	late := false
	select {
	case <-f.release:
		late = true
	default:
	}
	enc := json.NewEncoder(w)
	send := func(typ string, fields map[string]any) {
		obj := map[string]any{"apiVersion": res.apiVersion, "kind": res.kind}
		for k, v := range fields {
			obj[k] = v
		}
		_ = enc.Encode(map[string]any{"type": typ, "object": obj})
		w.(http.Flusher).Flush()
	}
	if r.URL.Query().Get("sendInitialEvents") == "true" {
		// A watch-list: no objects, then the bookmark that ends them.
		send("BOOKMARK", map[string]any{"metadata": map[string]any{"resourceVersion": "1",
			"annotations": map[string]any{"k8s.io/initial-events-end": "true"}}})
	} else {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
	}
	select {
	case f.opened <- res.path:
	default: // only the first watches matter
	}
	if !late {
		select {
		case <-f.release:
			send("ADDED", res.obj)
		case <-r.Context().Done():
			return
		}
	}
	<-r.Context().Done()
}

func (f *fakeAPI) watchCount(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.watches[path]
}

// plexusd's informers watch through clients without the requests' Timeout:
// client-go applies it to the whole exchange, so every watch would end
// after it and be re-opened (each node's watches twice a minute with the
// 30 s of restConfig). With a Timeout of 200 ms, each watch stays open
// well past it and delivers an object sent after it, without being
// re-opened; a request still ends at the Timeout.
func TestWatchesOutliveTheRequestTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	api := &fakeAPI{release: make(chan struct{}), opened: make(chan string, 16), watches: map[string]int{}}
	srv := httptest.NewServer(api)
	defer srv.Close()
	defer srv.CloseClientConnections()

	o := options.Defaults(func(string) string { return "" })
	dir := t.TempDir()
	o.NodeName, o.IPAMNamespace, o.ServeIPAM = "n1", "ipam", false
	o.ConfDir, o.BinDir, o.CNIDir, o.SourceBinDir, o.PluginKubeconfig = dir, dir, dir, "", ""
	d, err := newDaemon(&o, logging.New(logging.Options{Stderr: io.Discard}), &rest.Config{Host: srv.URL, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d.cache.Start(ctx)
	go d.pools.Run(ctx)
	open := map[string]bool{}
	for len(open) < len(watchedResources) {
		select {
		case p := <-api.opened:
			open[p] = true
		case <-time.After(30 * time.Second):
			t.Fatalf("watches open after 30 s: %v", open)
		}
	}
	// Every watch has been open for longer than the Timeout before the
	// objects are sent.
	time.Sleep(5 * timeout)
	close(api.release)

	live, err := d.cache.API(&config.NetConf{}, "")
	if err != nil {
		t.Fatal(err)
	}
	wantNode := metrics.PoolKey{Namespace: "ipam", Space: "net:a"}
	poll.Until(t, 10*time.Second, "the objects sent on the first watches are cached", func() (bool, string) {
		// A miss falls back to a live GET, which the server answers 404.
		_, podErr := live.GetPod(ctx, "ns", "p")
		_, nadErr := live.NAD(ctx, "ns", "macvlan")
		held := d.pools.Pools()[wantNode]
		return podErr == nil && nadErr == nil && held == 1, fmt.Sprintf("pod: %v; NAD: %v; node allocations: %d", podErr, nadErr, held)
	})
	for _, res := range watchedResources {
		if n := api.watchCount(res.path); n != 1 {
			t.Errorf("%s: %d watch requests, want 1 (the watch was cut and re-opened)", res.path, n)
		}
	}

	// The requests keep their Timeout: a GET the server never answers
	// fails after it, not when the caller gives up.
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	_, err = live.GetPod(rctx, "ns", "slow")
	if err == nil || rctx.Err() != nil {
		t.Errorf("GET of a pod the server never answers: %v (caller's context: %v), want the request's timeout", err, rctx.Err())
	}
}

// The informers' configuration drops the Timeout; the requests' keeps it.
func TestWatchConfig(t *testing.T) {
	cfg := &rest.Config{Host: "https://example.invalid", Timeout: requestTimeout, UserAgent: "plexusd"}
	w := watchConfig(cfg)
	if w.Timeout != 0 || w.Host != cfg.Host || w.UserAgent != "plexusd" {
		t.Errorf("watch config: Timeout %v, Host %q, UserAgent %q", w.Timeout, w.Host, w.UserAgent)
	}
	if cfg.Timeout != requestTimeout {
		t.Errorf("the requests' Timeout became %v", cfg.Timeout)
	}
}
