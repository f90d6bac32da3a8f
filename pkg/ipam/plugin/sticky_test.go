package plugin

import (
	"fmt"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

const stickyConf = `{"cniVersion":"1.0.0","name":"db","ipam":{"type":"plexus-ipam","range":"10.12.0.0/24","sticky":true}}`

// addPod runs ADD for container cid of pod tomcat/name with pod UID uid.
func (h *harness) addPod(cid, name, uid, conf string) {
	h.t.Helper()
	if err := h.p.Add(args(cid, "net1", conf, "K8S_POD_NAMESPACE=tomcat;K8S_POD_NAME="+name+";K8S_POD_UID="+uid)); err != nil {
		h.t.Fatalf("ADD %s: %v", cid, err)
	}
}

func (h *harness) held(cid string) string {
	h.t.Helper()
	a, err := h.st.List(h.t.Context(), store.Filter{ContainerID: cid})
	if err != nil || len(a) != 1 {
		return fmt.Sprintf("%v %v", a, err)
	}
	return a[0].Address.String()
}

// A StatefulSet pod recreated under its name gets its address back; other
// pods do not get it meanwhile; without "sticky" the address is freed.
func TestStickyAddressFollowsPodName(t *testing.T) {
	h := newHarness(t)
	h.addPod("db0-a", "db-0", "uid-a", stickyConf)
	h.addPod("db1-a", "db-1", "uid-b", stickyConf)
	first := h.held("db0-a")
	if err := h.p.Del(args("db0-a", "net1", stickyConf, "")); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	rk := store.ReservationKey("net:", "tomcat", "db-0", "net1", 0)
	if a, err := h.st.Lookup(t.Context(), rk); err != nil || a.Address.String() != first || a.PodUID != "" || !a.Sticky {
		t.Fatalf("after DEL the reservation is %+v, %v; want %s", a, err, first)
	}
	h.addPod("other", "web-x", "uid-c", stickyConf)
	if got := h.held("other"); got == first {
		t.Fatalf("another pod got the reserved %s", got)
	}
	h.addPod("db0-b", "db-0", "uid-d", stickyConf)
	if got := h.held("db0-b"); got != first {
		t.Errorf("recreated db-0 got %s, want its old %s", got, first)
	}
	if _, err := h.st.Lookup(t.Context(), rk); err == nil {
		t.Error("the reservation is still there after the takeover")
	}
	// A late DEL of the old sandbox changes nothing; GC keeps the address too.
	if err := h.p.Del(args("db0-a", "net1", stickyConf, "")); err != nil || h.held("db0-b") != first {
		t.Errorf("late DEL of the old sandbox: %v; db-0 holds %s", err, h.held("db0-b"))
	}
	gc := `{"cniVersion":"1.1.0","name":"db","ipam":{"type":"plexus-ipam","range":"10.12.0.0/24","sticky":true},"cni.dev/valid-attachments":[]}`
	if err := h.p.GC(&skel.CmdArgs{StdinData: []byte(gc)}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if a, err := h.st.Lookup(t.Context(), rk); err != nil || a.Address.String() != first {
		t.Errorf("GC of a sticky attachment: reservation %+v, %v; want %s", a, err, first)
	}
	plain := `{"cniVersion":"1.0.0","name":"web","ipam":{"type":"plexus-ipam","range":"10.13.0.0/24"}}`
	h.addPod("w-a", "web-0", "uid-e", plain)
	old := h.held("w-a")
	if err := h.p.Del(args("w-a", "net1", plain, "")); err != nil {
		t.Fatal(err)
	}
	h.addPod("w-filler", "web-9", "uid-f", plain)
	if got := h.held("w-filler"); got != old {
		t.Errorf("without sticky, the freed %s went elsewhere: next pod got %s", old, got)
	}
}
