// Package ipam is plexus-controller's IPAM reclaimer: a leader-only
// component that frees the addresses plexus-ipam allocated to pods that
// are gone (deleted, terminal, or bound to a deleted node), and keeps
// sticky addresses reserved for StatefulSet pods between two incarnations.
//
// Holders are matched by pod UID, never by name alone: a pod recreated
// under the same name is a different holder. An allocation younger than
// the grace period is never freed for a missing pod (its pod may not be
// in the cache yet), an allocation whose pod exists, is not terminal and
// runs on an existing node is never freed, and every decision to free is
// confirmed with uncached reads before the store is touched. Frees are
// guarded by the holder key (store.FreeHeld), so an address that changed
// hands since it was listed is left alone.
package ipam

import (
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// Action is what to do with one allocation.
type Action int

// The actions.
const (
	Keep Action = iota
	// Free releases the address.
	Free
	// Reserve hands a sticky address to its pod name's reservation.
	Reserve
)

func (a Action) String() string {
	return [...]string{"keep", "free", "reserve"}[a]
}

// Verdict is the decision about one allocation.
type Verdict struct {
	Action Action
	Reason string
	// Recheck, when not zero, is when a kept allocation may change
	// verdict without any event (its grace period or TTL ends).
	Recheck time.Time
}

// World answers the questions a decision asks: from the informer caches,
// or from the API server directly to confirm. A nil object without error
// means "does not exist".
type World interface {
	Pod(namespace, name string) (*corev1.Pod, error)
	NodeExists(name string) (bool, error)
	StatefulSet(namespace, name string) (*appsv1.StatefulSet, error)
	// ClaimExists reports whether the IPAMClaim exists.
	ClaimExists(namespace, name string) (bool, error)
}

// Policy holds the durations decisions use.
type Policy struct {
	// Grace protects allocations younger than it (by their Created) whose
	// pod is not found, and reservations younger than it.
	Grace time.Duration
	// StickyTTL is the longest a reservation lives without a pod of its
	// name.
	StickyTTL time.Duration
}

// Decide returns what to do with a. An error of w keeps the allocation.
func Decide(a store.Allocation, w World, now time.Time, p Policy) (Verdict, error) {
	if a.Reserved() {
		return decideReservation(a, w, now, p)
	}
	if a.PodUID == "" || a.PodName == "" {
		return Verdict{Action: Keep, Reason: "no pod identity"}, nil
	}
	pod, err := w.Pod(a.PodNamespace, a.PodName)
	if err != nil {
		return Verdict{Action: Keep, Reason: "pod unknown"}, err
	}
	if pod != nil && string(pod.UID) == a.PodUID {
		if terminal(pod) {
			return gone(a, "pod "+string(pod.Status.Phase)), nil
		}
		if node := pod.Spec.NodeName; node != "" {
			ok, err := w.NodeExists(node)
			if err != nil {
				return Verdict{Action: Keep, Reason: "node unknown"}, err
			}
			if !ok {
				return gone(a, "node "+node+" deleted"), nil
			}
		}
		return Verdict{Action: Keep, Reason: "pod exists"}, nil
	}
	if end := a.Created.Add(p.Grace); now.Before(end) {
		return Verdict{Action: Keep, Reason: "within the grace period", Recheck: end}, nil
	}
	if pod != nil {
		return gone(a, "pod recreated with another UID"), nil
	}
	return gone(a, "pod deleted"), nil
}

// gone frees a, or reserves it when it is sticky.
func gone(a store.Allocation, why string) Verdict {
	if a.Sticky {
		return Verdict{Action: Reserve, Reason: why}
	}
	return Verdict{Action: Free, Reason: why}
}

// decideReservation keeps a reservation while a pod of its name exists,
// within the grace period, and while a StatefulSet wants its ordinal (up
// to the TTL).
func decideReservation(a store.Allocation, w World, now time.Time, p Policy) (Verdict, error) {
	if a.Claim != "" {
		return decideClaim(a, w)
	}
	pod, err := w.Pod(a.PodNamespace, a.PodName)
	if err != nil {
		return Verdict{Action: Keep, Reason: "pod unknown"}, err
	}
	if pod != nil && !terminal(pod) {
		return Verdict{Action: Keep, Reason: "a pod of that name exists"}, nil
	}
	ttl := a.Created.Add(p.StickyTTL)
	if !now.Before(ttl) {
		return Verdict{Action: Free, Reason: "reservation expired"}, nil
	}
	if end := a.Created.Add(p.Grace); now.Before(end) {
		return Verdict{Action: Keep, Reason: "within the grace period", Recheck: end}, nil
	}
	set, ordinal, ok := statefulSetOf(a.PodName)
	if !ok {
		return Verdict{Action: Free, Reason: "not a StatefulSet pod name"}, nil
	}
	sts, err := w.StatefulSet(a.PodNamespace, set)
	if err != nil {
		return Verdict{Action: Keep, Reason: "StatefulSet unknown"}, err
	}
	if sts == nil || sts.DeletionTimestamp != nil {
		return Verdict{Action: Free, Reason: "StatefulSet " + set + " gone"}, nil
	}
	if !wantsOrdinal(sts, ordinal) {
		return Verdict{Action: Free, Reason: "StatefulSet " + set + " scaled below ordinal " + strconv.Itoa(ordinal)}, nil
	}
	return Verdict{Action: Keep, Reason: "StatefulSet " + set + " wants it", Recheck: ttl}, nil
}

func terminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// statefulSetOf splits "<set>-<ordinal>".
func statefulSetOf(pod string) (string, int, bool) {
	i := strings.LastIndexByte(pod, '-')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(pod[i+1:])
	if err != nil || n < 0 || strconv.Itoa(n) != pod[i+1:] {
		return "", 0, false
	}
	return pod[:i], n, true
}

// wantsOrdinal reports whether the StatefulSet's replicas cover ordinal
// (spec.ordinals.start included).
func wantsOrdinal(s *appsv1.StatefulSet, ordinal int) bool {
	replicas, start := 1, 0
	if s.Spec.Replicas != nil {
		replicas = int(*s.Spec.Replicas)
	}
	if s.Spec.Ordinals != nil {
		start = int(s.Spec.Ordinals.Start)
	}
	return ordinal >= start && ordinal < start+replicas
}

// decideClaim keeps an IPAMClaim's reservation while the claim exists,
// however long; once it is gone the addresses are freed (no grace period:
// a claim is not recreated under a pod's feet, and freeing acts only on a
// reservation that still holds the address).
func decideClaim(a store.Allocation, w World) (Verdict, error) {
	exists, err := w.ClaimExists(a.PodNamespace, a.Claim)
	if err != nil {
		return Verdict{Action: Keep, Reason: "IPAMClaim unknown"}, err
	}
	if exists {
		return Verdict{Action: Keep, Reason: "its IPAMClaim exists"}, nil
	}
	return Verdict{Action: Free, Reason: "its IPAMClaim is gone"}, nil
}
