package storetest

import (
	"net/netip"
	"testing"
	"time"

	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// testSticky: a sticky address handed to a reservation on DEL stays
// allocated (later pods get other addresses) and goes back to the next
// pod of the same name; Transfer refuses a key that holds nothing and a
// destination that already holds an address.
func testSticky(t *testing.T, open func() store.Store) {
	s := open()
	r := mkRange(t, "10.9.0.0/24", "", "", "10.9.0.1")
	first := req(space, r, "c1")
	first.Holder.PodName, first.Holder.Sticky = "db-0", true
	got := mustAlloc(t, s, first)
	mustAlloc(t, s, req(space, r, "c2"))
	now := time.Unix(1700000100, 0).UTC()
	resv := store.Reservation(first.Holder, now)
	a, err := s.Transfer(ctx(t), first.Key(), resv)
	if err != nil {
		t.Fatalf("Transfer to the reservation: %v", err)
	}
	rk := store.ReservationKey(space, "tomcat", "db-0", "net1", 0)
	if a.Address != got || a.Key() != rk || !a.Reserved() || a.PodUID != "" || a.Node != "" || !a.Created.Equal(now) || !a.Sticky {
		t.Errorf("reservation = %+v, want %s held by %+v, no pod UID or node, created %v", a, got, rk, now)
	}
	if _, err := s.Lookup(ctx(t), first.Key()); !isErr(err, store.ErrNotFound) {
		t.Errorf("the old key still holds an address: %v", err)
	}
	if l, err := s.Lookup(ctx(t), rk); err != nil || l.Address != got || l.PodName != "db-0" {
		t.Errorf("Lookup(reservation) = %+v, %v", l, err)
	}
	expectAddrs(t, "next pod while reserved", []netip.Addr{mustAlloc(t, s, req(space, r, "c3"))}, "10.9.0.4")
	next := req(space, r, "c4").Holder
	next.PodName, next.PodUID, next.Sticky = "db-0", "uid-new", true
	a, err = s.Transfer(ctx(t), rk, next)
	if err != nil || a.Address != got || a.ContainerID != "c4" || a.PodUID != "uid-new" {
		t.Fatalf("takeover = %+v, %v; want %s for c4", a, err, got)
	}
	if _, err := s.Transfer(ctx(t), rk, next); !isErr(err, store.ErrNotFound) {
		t.Errorf("second takeover of the reservation: %v, want ErrNotFound", err)
	}
	if _, err := s.Transfer(ctx(t), req(space, r, "c4").Key(), req(space, r, "c2").Holder); !isErr(err, store.ErrInUse) {
		t.Errorf("transfer to a key holding an address: %v, want ErrInUse", err)
	}
	if err := s.Release(ctx(t), first.Key()); err != nil {
		t.Fatalf("a late DEL of the first pod: %v", err)
	}
	if l, err := s.Lookup(ctx(t), req(space, r, "c4").Key()); err != nil || l.Address != got {
		t.Errorf("after the first pod's late DEL, the new pod holds %v, %v; want %s", l.Address, err, got)
	}
	checkConsistent(t, s)
}

// testFreeHeld: freeing what was listed never frees an address that has
// since gone to another holder.
func testFreeHeld(t *testing.T, open func() store.Store) {
	s := open()
	r := mkRange(t, "10.10.0.0/24", "", "", "")
	old, err := s.Allocate(ctx(t), req(space, r, "c1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx(t), old.Key()); err != nil {
		t.Fatal(err)
	}
	if got := mustAlloc(t, s, req(space, r, "c2")); got != old.Address {
		t.Fatalf("c2 got %s, want the freed %s", got, old.Address)
	}
	if err := s.FreeHeld(ctx(t), old); err != nil {
		t.Fatalf("FreeHeld of a stale listing: %v", err)
	}
	cur, err := s.Lookup(ctx(t), req(space, r, "c2").Key())
	if err != nil || cur.Address != old.Address {
		t.Fatalf("FreeHeld of c1's stale allocation freed c2's address: %v, %v", cur.Address, err)
	}
	if err := s.FreeHeld(ctx(t), cur); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx(t), cur.Key()); !isErr(err, store.ErrNotFound) {
		t.Errorf("FreeHeld of the current holder left it allocated: %v", err)
	}
	checkConsistent(t, s)
}
