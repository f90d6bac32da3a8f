package inspect

import (
	"context"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
)

// Event is a pod's event, such as the FailedCreatePodSandBox the kubelet
// records when a CNI ADD fails.
type Event struct {
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
}

// String is "Reason: message" on one line.
func (e *Event) String() string {
	return e.Reason + ": " + strings.Join(strings.Fields(e.Message), " ")
}

// lastFailures sets LastFailure of pods to their newest Warning event: one
// paged list of the Warning events of pods in q's namespace (narrowed to the
// name when q reads one pod).
func lastFailures(ctx context.Context, c Cluster, q PodQuery, pods []Pod) error {
	byUID := make(map[types.UID]*Pod, len(pods))
	for i := range pods {
		byUID[pods[i].uid] = &pods[i]
	}
	sel := fields.Set{"involvedObject.kind": "Pod", "type": corev1.EventTypeWarning}
	if len(q.Names) == 1 {
		sel["involvedObject.name"] = q.Names[0]
	}
	opts := metav1.ListOptions{FieldSelector: sel.AsSelector().String()}
	return eachEvent(ctx, c, q.Namespace, opts, func(ev *corev1.Event) error {
		p := byUID[ev.InvolvedObject.UID]
		if p == nil || ev.Type != corev1.EventTypeWarning || ev.InvolvedObject.Kind != "Pod" {
			return nil
		}
		at := eventTime(ev)
		if p.LastFailure == nil || !at.Before(p.LastFailure.Time) {
			p.LastFailure = &Event{Reason: ev.Reason, Message: ev.Message, Time: at}
		}
		return nil
	})
}

// eventTime is when the event last happened, from whichever of its
// timestamps the recorder filled in.
func eventTime(ev *corev1.Event) time.Time {
	switch {
	case ev.Series != nil && !ev.Series.LastObservedTime.IsZero():
		return ev.Series.LastObservedTime.Time
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	case !ev.FirstTimestamp.IsZero():
		return ev.FirstTimestamp.Time
	}
	return ev.CreationTimestamp.Time
}
