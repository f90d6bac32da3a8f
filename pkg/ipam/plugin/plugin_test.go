package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/types/create"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/memstore"
)

// harness runs commands against one memstore, as plugin processes on one
// node would against a shared store.
type harness struct {
	t       *testing.T
	st      *memstore.Store
	p       *Plugin
	results []string
}

// testLog logs a request's lines through the test.
type testLog struct{ t *testing.T }

func (l testLog) Debugf(format string, args ...any) { l.t.Logf("[debug] "+format, args...) }
func (l testLog) Infof(format string, args ...any)  { l.t.Logf("[verbose] "+format, args...) }
func (l testLog) Errorf(format string, args ...any) { l.t.Logf("[error] "+format, args...) }
func (l testLog) Close() error                      { return nil }

// code returns the CNI code of a command's error: skel prints a
// *types.Error as it is and anything else as 999.
func code(err error) uint {
	var e *types.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return types.ErrInternal
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, st: memstore.New()}
	h.p = &Plugin{
		Loader:    config.Loader{Files: config.OSFiles{}},
		OpenStore: func(*config.Conf, Logf) (store.Store, error) { return h.st, nil },
		OpenLog:   func(string, string) Logger { return testLog{t} },
		Getenv: func(k string) string {
			if k == "NODENAME" {
				return "node-a"
			}
			return ""
		},
		Hostname: func() (string, error) { return "host", nil },
		Now:      func() time.Time { return time.Unix(1700000000, 0) },
		Print: func(res types.Result, v string) error {
			conv, err := res.GetAsVersion(v)
			if err != nil {
				return err
			}
			var b bytes.Buffer
			if err := conv.PrintTo(&b); err != nil {
				return err
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, b.Bytes()); err != nil {
				return err
			}
			h.results = append(h.results, compact.String())
			return nil
		},
		Timeout: time.Minute, StatusTimeout: time.Second,
	}
	return h
}

func args(cid, ifname, conf, cniArgs string) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: cid, IfName: ifname, Netns: "/run/netns/x", Args: cniArgs, StdinData: []byte(conf)}
}

// add runs ADD and returns the addresses of the result.
func (h *harness) add(cid, conf string) []string {
	h.t.Helper()
	if err := h.p.Add(args(cid, "net1", conf, "K8S_POD_NAMESPACE=tomcat;K8S_POD_NAME=pod-"+cid+";K8S_POD_UID=uid-"+cid)); err != nil {
		h.t.Fatalf("ADD %s: %v", cid, err)
	}
	res, err := create.CreateFromBytes([]byte(h.results[len(h.results)-1]))
	if err != nil {
		h.t.Fatalf("result: %v", err)
	}
	cur, err := current.NewResultFromResult(res)
	if err != nil {
		h.t.Fatalf("result: %v", err)
	}
	var out []string
	for _, ip := range cur.IPs {
		s := ip.Address.String()
		if ip.Gateway != nil {
			s += " gw " + ip.Gateway.String()
		}
		out = append(out, s)
	}
	return out
}

const s4 = `{"cniVersion":"0.3.0","name":"whereaboutsexample","type":"macvlan","master":"ens3","mode":"bridge",
"ipam":{"type":"plexus-ipam","range":"192.168.91.100-192.168.91.110/24","log_level":"debug","gateway":"192.168.91.1",
"routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["192.168.91.53"]}}}`

func TestS4ThroughCommands(t *testing.T) {
	h := newHarness(t)
	var got []string
	for i := 0; i < 8; i++ {
		got = append(got, h.add(fmt.Sprintf("c%d", i), s4)...)
	}
	want := "[192.168.91.100/24 gw 192.168.91.1 192.168.91.101/24 gw 192.168.91.1 192.168.91.102/24 gw 192.168.91.1 " +
		"192.168.91.103/24 gw 192.168.91.1 192.168.91.104/24 gw 192.168.91.1 192.168.91.105/24 gw 192.168.91.1 " +
		"192.168.91.106/24 gw 192.168.91.1 192.168.91.107/24 gw 192.168.91.1]"
	if fmt.Sprint(got) != want {
		t.Errorf("S4 sequence:\n got %v\nwant %s", got, want)
	}
	last := h.results[len(h.results)-1]
	for _, part := range []string{`"cniVersion":"0.3.0"`, `"version":"4"`, `"dst":"0.0.0.0/0"`, `"nameservers":["192.168.91.53"]`} {
		if !strings.Contains(last, part) {
			t.Errorf("result %s lacks %s", last, part)
		}
	}
	// Idempotent ADD, DEL frees, DEL of unknown succeeds, CHECK.
	if again := h.add("c3", s4); again[0] != "192.168.91.103/24 gw 192.168.91.1" {
		t.Errorf("repeated ADD: %v", again)
	}
	if err := h.p.Check(args("c3", "net1", s4, "")); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	if err := h.p.Del(args("c2", "net1", s4, "")); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if err := h.p.Del(args("c2", "net1", s4, "")); err != nil {
		t.Errorf("second DEL: %v", err)
	}
	if err := h.p.Check(args("c2", "net1", s4, "")); err == nil {
		t.Error("CHECK after DEL succeeded")
	}
	if got := h.add("c9", s4); got[0] != "192.168.91.102/24 gw 192.168.91.1" {
		t.Errorf("ADD after DEL of .102: %v", got)
	}
	a, err := h.st.Lookup(t.Context(), store.Key{Space: "net:", ContainerID: "c9", IfName: "net1"})
	if err != nil || a.PodNamespace != "tomcat" || a.PodName != "pod-c9" || a.PodUID != "uid-c9" || a.Node != "node-a" || a.Network != "whereaboutsexample" {
		t.Errorf("holder recorded as %+v (%v)", a.Holder, err)
	}
}

func TestDualStackResultAndRollback(t *testing.T) {
	h := newHarness(t)
	conf := `{"cniVersion":"1.1.0","name":"ds","ipam":{"type":"plexus-ipam","gateway":"192.0.2.1",
		"ipRanges":[{"range":"192.0.2.0/30"},{"range":"2001:db8::/64"}]}}`
	got := h.add("c1", conf)
	if fmt.Sprint(got) != "[192.0.2.2/30 gw 192.0.2.1 2001:db8::1/64]" {
		t.Errorf("dual stack: %v (the gateway goes on its family only)", got)
	}
	// The /30 is now full: the next ADD fails with 11 and leaves no IPv6 address behind.
	err := h.p.Add(args("c2", "net1", conf, ""))
	if code := code(err); code != types.ErrTryAgainLater {
		t.Fatalf("ADD on a full range: %v (code %d), want code 11", err, code)
	}
	all, _ := h.st.List(t.Context(), store.Filter{ContainerID: "c2"})
	if len(all) != 0 {
		t.Errorf("failed ADD left %v allocated", all)
	}
}

func TestRequestedAndErrorCodes(t *testing.T) {
	h := newHarness(t)
	conf := `{"cniVersion":"1.0.0","name":"n","capabilities":{"ips":true},"runtimeConfig":{"ips":["10.9.0.50/24"]},
		"ipam":{"type":"plexus-ipam","range":"10.9.0.0/24"}}`
	if got := h.add("c1", conf); got[0] != "10.9.0.50/24" {
		t.Errorf("requested: %v", got)
	}
	tests := []struct {
		name, conf, cniArgs string
		code                uint
	}{
		{"requested address in use", conf, "", types.ErrTryAgainLater},
		{"CNI_ARGS IP outside the range", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"plexus-ipam","range":"10.9.0.0/24"}}`, "IP=10.10.0.1", types.ErrInvalidNetworkConfig},
		{"bad CNI_ARGS", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"plexus-ipam","range":"10.9.0.0/24"}}`, "garbage", types.ErrInvalidEnvironmentVariables},
		{"range_end outside the range", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"plexus-ipam","range":"10.9.0.0/24","range_end":"10.9.1.1"}}`, "", types.ErrInvalidNetworkConfig},
	}
	for _, tt := range tests {
		err := h.p.Add(args("c2", "net1", tt.conf, tt.cniArgs))
		if code := code(err); code != tt.code {
			t.Errorf("%s: %v (code %d), want code %d", tt.name, err, code, tt.code)
		}
	}
}

func TestGCAndStatus(t *testing.T) {
	h := newHarness(t)
	conf := `{"cniVersion":"1.1.0","name":"gcnet","ipam":{"type":"plexus-ipam","range":"10.11.0.0/24"}}`
	for _, c := range []string{"keep", "drop1", "drop2"} {
		h.add(c, conf)
	}
	// An allocation of another node and one of another network sharing the space stay.
	other := store.Holder{ContainerID: "remote", IfName: "net1", Network: "gcnet", Node: "node-b"}
	othernet := store.Holder{ContainerID: "othernet", IfName: "net1", Network: "another", Node: "node-a"}
	r := h.mustRange("10.11.0.0/24")
	for _, hd := range []store.Holder{other, othernet} {
		if _, err := h.st.Allocate(t.Context(), store.Request{Space: "net:", Range: r, Holder: hd}); err != nil {
			t.Fatal(err)
		}
	}
	gc := `{"cniVersion":"1.1.0","name":"gcnet","ipam":{"type":"plexus-ipam","range":"10.11.0.0/24"},
		"cni.dev/valid-attachments":[{"containerID":"keep","ifname":"net1"}]}`
	if err := h.p.GC(&skel.CmdArgs{StdinData: []byte(gc)}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	all, _ := h.st.List(t.Context(), store.Filter{})
	var left []string
	for _, a := range all {
		left = append(left, a.ContainerID)
	}
	if fmt.Sprint(left) != "[keep remote othernet]" {
		t.Errorf("after GC: %v, want [keep remote othernet]", left)
	}
	if err := h.p.Status(&skel.CmdArgs{StdinData: []byte(conf)}); err != nil {
		t.Errorf("STATUS: %v", err)
	}
	h.st.SetDown(true)
	if err := h.p.Status(&skel.CmdArgs{StdinData: []byte(conf)}); code(err) != types.ErrPluginNotAvailable {
		t.Errorf("STATUS with the store down: %v (code %d), want 50", err, code(err))
	}
	if err := h.p.Add(args("x", "net1", conf, "")); code(err) != types.ErrTryAgainLater {
		t.Errorf("ADD with the store down: %v (code %d), want 11", err, code(err))
	}
	if err := h.p.Del(args("keep", "net1", conf, "")); code(err) != types.ErrTryAgainLater {
		t.Errorf("DEL with the store down: %v (code %d), want 11 (DEL must not hide failures)", err, code(err))
	}
}

func (h *harness) mustRange(cidr string) *alloc.Range {
	c, err := (config.Loader{Files: config.OSFiles{}}).Load([]byte(`{"name":"x","ipam":{"type":"plexus-ipam","range":"`+cidr+`"}}`), config.Args{})
	if err != nil {
		h.t.Fatal(err)
	}
	return c.Slots[0].Ranges[0]
}

// The configuration's log_level and log_file reach OpenLog as they are;
// an unknown level does not fail the ADD (as under Whereabouts): the log
// opener deals with it.
func TestLogConfigurationReachesOpenLog(t *testing.T) {
	h := newHarness(t)
	var got [2]string
	h.p.OpenLog = func(level, file string) Logger {
		got = [2]string{level, file}
		return testLog{t}
	}
	h.add("c1", strings.Replace(s4, `"log_level":"debug"`, `"log_level":"loud","log_file":"/var/log/plexus-ipam.log"`, 1))
	if got != [2]string{"loud", "/var/log/plexus-ipam.log"} {
		t.Errorf("OpenLog got level and file %q", got)
	}
}
