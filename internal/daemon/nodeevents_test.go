package daemon

import (
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/plexus-cni/plexus/internal/daemon/install"
	"github.com/plexus-cni/plexus/internal/logging"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
)

// One event per change of the installer's situation, none while it stays.
func TestNodeEventPerChange(t *testing.T) {
	multus := install.State{Reason: install.ReasonMetaPlugin, File: "00-multus.conf", Waiting: "00-multus.conf is Multus"}
	kubeconfigToo := multus
	kubeconfigToo.KubeconfigError = "token missing"
	ready := install.State{ConfCurrent: true}
	tookOver := install.State{ConfCurrent: true, Moved: "00-multus.conf"}
	shadowed := install.State{Reason: install.ReasonShadowed, File: "00-a.conf", Waiting: "00-a.conf sorts before"}
	steps := []struct {
		st         install.State
		typ, event string
	}{
		{ready, "", ""}, // a node that starts ready: nothing to say
		{multus, corev1.EventTypeWarning, install.ReasonMetaPlugin},
		{kubeconfigToo, "", ""}, // another change, the same reason: no second event
		{tookOver, corev1.EventTypeNormal, ReasonTookOverMultus},
		{ready, "", ""},
		{shadowed, corev1.EventTypeWarning, install.ReasonShadowed},
		{ready, corev1.EventTypeNormal, ReasonInUse},
		{ready, "", ""},
	}
	last := ""
	for i, s := range steps {
		typ, reason, msg := nodeEvent(last, s.st)
		if typ != s.typ || reason != s.event {
			t.Errorf("step %d (%+v): event %s %s, want %s %s", i, s.st, typ, reason, s.typ, s.event)
		}
		if reason != "" {
			if msg == "" {
				t.Errorf("step %d: event %s without a message", i, reason)
			}
			last = reason
		}
	}
}

// The event lands on the Node (namespace default) with the file named.
func TestNodeEventRecorded(t *testing.T) {
	cs := fake.NewClientset()
	n := &nodeEvents{cs: cs, node: "node-2", log: logging.New(logging.Options{Stderr: io.Discard})}
	n.observe(install.State{Reason: install.ReasonMetaPlugin, File: "00-multus.conf", Waiting: "00-multus.conf is Multus"})
	n.observe(install.State{Reason: install.ReasonMetaPlugin, File: "00-multus.conf", Waiting: "00-multus.conf is Multus"})
	var events []corev1.Event
	poll.Until(t, 10*time.Second, "the event is recorded", func() (bool, string) {
		list, err := cs.CoreV1().Events(metav1.NamespaceDefault).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		events = list.Items
		return len(events) > 0, "no event"
	})
	e := events[0]
	if len(events) != 1 || e.InvolvedObject.Kind != "Node" || e.InvolvedObject.Name != "node-2" ||
		e.Reason != install.ReasonMetaPlugin || e.Type != corev1.EventTypeWarning || !strings.Contains(e.Message, "00-multus.conf") {
		t.Errorf("events = %+v, want one Warning %s on Node node-2 naming 00-multus.conf", events, install.ReasonMetaPlugin)
	}
}
