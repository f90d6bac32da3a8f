package kubestore

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
)

// FakeAPI is the part of the Kubernetes API a Store uses, in memory:
// create only if absent, get, update and delete guarded by
// resourceVersion (and UID), and lists filtered by equality label
// selectors, for plexus's three kinds. It lets the unit tier run claims of
// many clients against one arbiter without a test bed. Objects are kept
// as JSON maps; nothing is validated but what the Store relies on.
type FakeAPI struct {
	// Config connects a Store to it.
	Config *rest.Config

	mu   sync.Mutex // guards all following fields
	rv   int64
	objs map[string]map[string]map[string]any // resource, "namespace/name"
	// creates counts the POSTs per resource, lost ones included.
	creates map[string]int
	// gate holds the creates of a resource until enough arrived (Gate).
	gate *fakeGate
}

type fakeGate struct {
	resource string
	n        int // creates still to arrive before all go on
	open     chan struct{}
}

var fakeKinds = map[string]string{
	v1.ResourceIPAllocations: "IPAllocation",
	v1.ResourceIPAttachments: "IPAttachment",
	v1.ResourceIPSpaces:      "IPSpace",
}

// NewFakeAPI starts a FakeAPI, stopped when t ends.
func NewFakeAPI(t testing.TB) *FakeAPI {
	f := &FakeAPI{objs: map[string]map[string]map[string]any{}, creates: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.Config = &rest.Config{Host: srv.URL}
	return f
}

// Gate holds the next n creates of resource until the n-th arrives, then
// lets them all go on (in no set order): n clients that each sent one have
// all read what they read before any of their creates is applied, as if
// they had run at exactly the same time.
func (f *FakeAPI) Gate(resource string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = &fakeGate{resource: resource, n: n, open: make(chan struct{})}
}

// wait holds a create of resource while a gate is closed.
func (f *FakeAPI) wait(r *http.Request, resource string) {
	f.mu.Lock()
	g := f.gate
	if g == nil || g.resource != resource {
		f.mu.Unlock()
		return
	}
	if g.n--; g.n == 0 {
		f.gate = nil
		close(g.open)
	}
	f.mu.Unlock()
	select {
	case <-g.open:
	case <-r.Context().Done():
	}
}

// Creates returns how many creates of resource were sent, lost ones
// included.
func (f *FakeAPI) Creates(resource string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creates[resource]
}

// serve handles /apis/plexus.dev/v1alpha1/namespaces/NS/RESOURCE[/NAME].
func (f *FakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 6 || parts[0] != "apis" || parts[1] != v1.Group || parts[2] != v1.Version || parts[3] != "namespaces" || fakeKinds[parts[5]] == "" {
		status(w, http.StatusNotFound, "NotFound", "no such path "+r.URL.Path)
		return
	}
	ns, res, name := parts[4], parts[5], ""
	if len(parts) > 6 {
		name = parts[6]
	}
	if r.Method == http.MethodPost {
		f.wait(r, res)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.objs[res] == nil {
		f.objs[res] = map[string]map[string]any{}
	}
	objs := f.objs[res]
	var body map[string]any
	if r.Body != nil && (r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodDelete) {
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil && r.Method != http.MethodDelete {
			status(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
	}
	switch {
	case r.Method == http.MethodGet && name == "":
		f.list(w, res, ns, objs, r.URL.Query().Get("labelSelector"))
	case r.Method == http.MethodGet:
		if o := objs[ns+"/"+name]; o != nil {
			reply(w, http.StatusOK, o)
			return
		}
		status(w, http.StatusNotFound, "NotFound", res+" "+name+" not found")
	case r.Method == http.MethodPost:
		f.creates[res]++
		meta := metaOf(body)
		name, _ := meta["name"].(string)
		if objs[ns+"/"+name] != nil {
			status(w, http.StatusConflict, "AlreadyExists", res+" "+name+" already exists")
			return
		}
		f.rv++
		meta["namespace"], meta["resourceVersion"], meta["uid"] = ns, strconv.FormatInt(f.rv, 10), fmt.Sprintf("uid-%d", f.rv)
		meta["creationTimestamp"] = time.Now().UTC().Format(time.RFC3339)
		objs[ns+"/"+name] = body
		reply(w, http.StatusCreated, body)
	case r.Method == http.MethodPut:
		cur := objs[ns+"/"+name]
		if cur == nil {
			status(w, http.StatusNotFound, "NotFound", res+" "+name+" not found")
			return
		}
		meta, curMeta := metaOf(body), metaOf(cur)
		if rv, _ := meta["resourceVersion"].(string); rv != "" && rv != curMeta["resourceVersion"] {
			status(w, http.StatusConflict, "Conflict", res+" "+name+": the object has been modified")
			return
		}
		f.rv++
		meta["namespace"], meta["resourceVersion"], meta["uid"] = ns, strconv.FormatInt(f.rv, 10), curMeta["uid"]
		meta["creationTimestamp"] = curMeta["creationTimestamp"]
		objs[ns+"/"+name] = body
		reply(w, http.StatusOK, body)
	case r.Method == http.MethodDelete:
		cur := objs[ns+"/"+name]
		if cur == nil {
			status(w, http.StatusNotFound, "NotFound", res+" "+name+" not found")
			return
		}
		curMeta := metaOf(cur)
		if pre, _ := body["preconditions"].(map[string]any); pre != nil {
			if uid, _ := pre["uid"].(string); uid != "" && uid != curMeta["uid"] {
				status(w, http.StatusConflict, "Conflict", res+" "+name+": precondition failed: uid")
				return
			}
			if rv, _ := pre["resourceVersion"].(string); rv != "" && rv != curMeta["resourceVersion"] {
				status(w, http.StatusConflict, "Conflict", res+" "+name+": precondition failed: resourceVersion")
				return
			}
		}
		delete(objs, ns+"/"+name)
		reply(w, http.StatusOK, map[string]any{"apiVersion": "v1", "kind": "Status", "status": "Success"})
	default:
		status(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method)
	}
}

// list replies with the objects of ns matching selector (k=v,...), by name.
func (f *FakeAPI) list(w http.ResponseWriter, res, ns string, objs map[string]map[string]any, selector string) {
	want := map[string]string{}
	for _, term := range strings.Split(selector, ",") {
		if k, v, ok := strings.Cut(term, "="); ok {
			want[k] = v
		}
	}
	var keys []string
	for k, o := range objs {
		labels, _ := metaOf(o)["labels"].(map[string]any)
		match := strings.HasPrefix(k, ns+"/")
		for lk, lv := range want {
			match = match && labels[lk] == lv
		}
		if match {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	items := make([]any, 0, len(keys))
	for _, k := range keys {
		items = append(items, objs[k])
	}
	reply(w, http.StatusOK, map[string]any{
		"apiVersion": v1.Group + "/" + v1.Version, "kind": fakeKinds[res] + "List",
		"metadata": map[string]any{"resourceVersion": strconv.FormatInt(f.rv, 10)}, "items": items,
	})
}

func metaOf(o map[string]any) map[string]any {
	m, _ := o["metadata"].(map[string]any)
	if m == nil {
		m = map[string]any{}
		o["metadata"] = m
	}
	return m
}

func reply(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

// status replies with a failed metav1.Status, which the client turns into
// the matching API error (apierrors.IsAlreadyExists, IsConflict, ...).
func status(w http.ResponseWriter, code int, reason, msg string) {
	reply(w, code, map[string]any{"apiVersion": "v1", "kind": "Status", "status": "Failure",
		"reason": reason, "message": msg, "code": code})
}

// fakeStore returns a Store of namespace ns on api.
func fakeStore(t testing.TB, api *FakeAPI, ns string) *Store {
	t.Helper()
	s, err := New(api.Config, Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// prefixRange is the range of all of prefix's host addresses.
func prefixRange(t testing.TB, prefix string) *alloc.Range {
	t.Helper()
	r, err := alloc.NewRange(netip.MustParsePrefix(prefix), netip.Addr{}, netip.Addr{}, netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
