package runtime

import (
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
)

// ChildEvents gathers what one sync did to an object's children and records it as one Normal
// Event per kind of change ("Created deployment a, service b"), not one per child: creating a
// service's children is one fact for whoever reads `kubectl describe`, and at a thousand services
// per-child Events would be more API writes than the children themselves. Failures are not
// gathered: a controller records them as Warnings when they happen. The zero value is ready; Add
// may be called from several goroutines (children converged concurrently), and the children of
// one reason are named in sorted order.
type ChildEvents struct {
	mu      sync.Mutex
	reasons []string
	changed map[string][]string
}

// Add notes that the sync did reason ("Created", "Updated", "Deleted") to the child described
// by what ("deployment x").
func (e *ChildEvents) Add(reason, what string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.changed == nil {
		e.changed = map[string][]string{}
	}
	if _, ok := e.changed[reason]; !ok {
		e.reasons = append(e.reasons, reason)
	}
	e.changed[reason] = append(e.changed[reason], what)
}

// Record records one Event on obj per reason added, in the order reasons were first added, and
// forgets them.
func (e *ChildEvents) Record(recorder record.EventRecorder, obj k8sruntime.Object) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, reason := range e.reasons {
		children := slices.Clone(e.changed[reason])
		slices.Sort(children)
		recorder.Event(obj, corev1.EventTypeNormal, reason, reason+" "+strings.Join(children, ", "))
	}
	e.reasons, e.changed = nil, nil
}
