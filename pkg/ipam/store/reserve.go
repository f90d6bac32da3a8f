package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// reservationPrefix starts the pseudo container ID of a reservation, and
// claimPrefix that of an IPAMClaim's. A runtime's container IDs are hex or
// UUIDs and never contain "/".
const (
	reservationPrefix = "sticky/"
	claimPrefix       = "claim/"
)

// Reservation returns the holder of a sticky address between two pods of
// one name: the pseudo container "sticky/<namespace>/<name>", the same
// interface, network and pod name, no pod UID and no node (no pod holds
// it), created at now. The next pod of that namespace and name takes it
// over on ADD.
//
// An address of an IPAMClaim is reserved for the claim instead: the pseudo
// container "claim/<namespace>/<claim>", no pod name; the next pod naming
// the claim takes it over.
func Reservation(h Holder, now time.Time) Holder {
	if h.Claim != "" {
		return Holder{ContainerID: ClaimReservationID(h.PodNamespace, h.Claim), IfName: h.IfName, Network: h.Network,
			PodNamespace: h.PodNamespace, Created: now, Sticky: true, Claim: h.Claim}
	}
	return Holder{ContainerID: ReservationID(h.PodNamespace, h.PodName), IfName: h.IfName, Network: h.Network,
		PodNamespace: h.PodNamespace, PodName: h.PodName, Created: now, Sticky: true}
}

// ClaimReservationID is the pseudo container ID of an IPAMClaim's
// reservations.
func ClaimReservationID(namespace, claim string) string {
	return claimPrefix + namespace + "/" + claim
}

// ClaimReservationKey is the holder key of the reservation of an
// IPAMClaim's address (ifname, slot) in space.
func ClaimReservationKey(space, namespace, claim, ifname string, slot int) Key {
	return Key{Space: space, ContainerID: ClaimReservationID(namespace, claim), IfName: ifname, Slot: slot}
}

// ReservationID is the pseudo container ID of the reservations of a pod
// name.
func ReservationID(namespace, name string) string {
	return reservationPrefix + namespace + "/" + name
}

// ReservationKey is the holder key of the reservation a pod name's
// attachment (ifname, slot) would take over in space.
func ReservationKey(space, namespace, name, ifname string, slot int) Key {
	return Key{Space: space, ContainerID: ReservationID(namespace, name), IfName: ifname, Slot: slot}
}

// Reserved reports whether h is a reservation rather than a container.
func (h Holder) Reserved() bool {
	return strings.HasPrefix(h.ContainerID, reservationPrefix) || strings.HasPrefix(h.ContainerID, claimPrefix)
}

// Reserve hands a to its pod name's reservation, made at now (DEL on a
// sticky network, the controller for a sticky pod that is gone). A newer
// address replaces an older reservation of the same pod name, interface
// and slot. An allocation freed or reserved meanwhile is not an error.
func Reserve(ctx context.Context, st Store, a Allocation, now time.Time) error {
	resv := Reservation(a.Holder, now)
	_, err := st.Transfer(ctx, a.Key(), resv)
	if errors.Is(err, ErrInUse) {
		old := Key{Space: a.Space, ContainerID: resv.ContainerID, IfName: resv.IfName, Slot: a.Slot}
		if err := st.Release(ctx, old); err != nil {
			return fmt.Errorf("replacing the reservation of %s/%s: %w", a.PodNamespace, a.PodName, err)
		}
		_, err = st.Transfer(ctx, a.Key(), resv)
	}
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
