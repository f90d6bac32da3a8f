package daemon

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/plexus-cni/plexus/internal/daemon/install"
	"github.com/plexus-cni/plexus/internal/logging"
)

// Reasons of the Normal events on the Node (the Warning ones are the
// installer's reasons, install.Reason*).
const (
	ReasonTookOverMultus = "TookOverMultus"
	ReasonInUse          = "PlexusInUse"
)

// nodeEvent is the event a new installer state calls for, given the
// reason of the last event recorded ("" when none): one per change, none
// while nothing changes.
func nodeEvent(last string, st install.State) (eventType, reason, message string) {
	switch {
	case st.Moved != "":
		return corev1.EventTypeNormal, ReasonTookOverMultus, "plexus took this node over from Multus: moved " + st.Moved +
			" aside (`plexusd uninstall` names the rename that rolls back)"
	case st.ConfCurrent && last != "" && last != ReasonInUse && last != ReasonTookOverMultus:
		return corev1.EventTypeNormal, ReasonInUse, "the runtime uses plexus's CNI configuration again"
	case !st.ConfCurrent && st.Reason != "" && st.Reason != last:
		return corev1.EventTypeWarning, st.Reason, st.Waiting
	}
	return "", "", ""
}

// nodeEvents records the installer's state changes as events on this
// node's Node object (namespace default, as the kubelet's), without
// blocking the installer.
type nodeEvents struct {
	cs   kubernetes.Interface
	node string
	log  *logging.Logger

	mu   sync.Mutex
	last string
}

func (n *nodeEvents) observe(st install.State) {
	n.mu.Lock()
	typ, reason, msg := nodeEvent(n.last, st)
	if reason != "" {
		n.last = reason
	}
	n.mu.Unlock()
	if reason == "" {
		return
	}
	go n.record(typ, reason, msg)
}

func (n *nodeEvents) record(typ, reason, msg string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := metav1.NewTime(time.Now())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: n.node + ".", Namespace: metav1.NamespaceDefault},
		// The kubelet's node events use the node name as UID; kubectl
		// describe node finds both forms.
		InvolvedObject: corev1.ObjectReference{Kind: "Node", APIVersion: "v1", Name: n.node, UID: types.UID(n.node)},
		Type:           typ, Reason: reason, Message: msg,
		Source:         corev1.EventSource{Component: "plexusd", Host: n.node},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "plexus.dev/plexusd", ReportingInstance: n.node,
	}
	if _, err := n.cs.CoreV1().Events(metav1.NamespaceDefault).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		n.log.Errorf("recording event %s on node %s: %v", reason, n.node, err)
	}
}
