package chaos

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// notReadyPartition is the length of a partition by whose end the node lifecycle controller must
// have marked the node NotReady: local Sedna's grace period (40 s) for the node's missed
// heartbeats, its 5 s monitor period and a margin.
const notReadyPartition = 60 * time.Second

// controlPlaneSettle is how long after an API server or etcd restart the node lifecycle
// controller may still fail its checks (it skips a node whose Lease it cannot read: connection
// refused, RBAC not loaded yet, a watch cache behind etcd; session 10's run logged such skips
// up to 23 s after the API server was back).
const controlPlaneSettle = 30 * time.Second

// interval is a span of time.
type interval struct{ from, to time.Time }

// longCut is a partition of at least notReadyPartition and whether its node was NotReady at its
// end.
type longCut struct {
	node     string
	span     interval
	notReady bool
}

// noteLongCut records a partition of at least notReadyPartition that began at from, and whether
// its node is NotReady now, at its end, before the link comes back.
func (c *campaign) noteLongCut(ctx context.Context, node string, from time.Time) {
	n, err := c.s.Kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	notReady := err == nil && !slices.ContainsFunc(n.Status.Conditions, func(cond corev1.NodeCondition) bool {
		return cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue
	})
	if err != nil {
		c.logf("chaos: reading node %s at the end of its partition: %v", node, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.longCuts = append(c.longCuts, longCut{node: node, span: interval{from, time.Now()}, notReady: notReady})
}

// notReadyRow adds the row of the long partitions. The node lifecycle controller marks a node
// NotReady at its first pass (every 5 s) that finds the node's Lease older than the grace
// period (40 s), and skips its checks while it cannot read the Lease: during an API server or
// etcd restart and while the restarted control plane settles. So a partition must have left its
// node NotReady when, after its first notReadyPartition-10s (the grace, and the up to 10 s
// between the node's last renewal and the cut), it held a quiet stretch of at least
// quietPasses; the others are counted apart.
func (c *campaign) notReadyRow(add func(inv, want, got string, ok bool)) {
	c.mu.Lock()
	cuts, restarts := slices.Clone(c.longCuts), slices.Clone(c.controlPlane)
	c.mu.Unlock()
	if len(cuts) == 0 {
		return
	}
	disturbed := make([]interval, 0, len(restarts))
	for _, r := range restarts {
		disturbed = append(disturbed, interval{r.from, r.to.Add(controlPlaneSettle)})
	}
	expected, notReady, other, otherNotReady := 0, 0, 0, 0
	var stayedReady []string
	for _, cut := range cuts {
		due := interval{cut.span.from.Add(notReadyPartition - 10*time.Second), cut.span.to}
		switch quiet := longestQuiet(due, disturbed) >= quietPasses; {
		case quiet && cut.notReady:
			expected++
			notReady++
		case quiet:
			expected++
			stayedReady = append(stayedReady, fmt.Sprintf("%s %s–%s", cut.node, cut.span.from.Format("15:04:05"), cut.span.to.Format("15:04:05")))
		default:
			other++
			if cut.notReady {
				otherNotReady++
			}
		}
	}
	got := fmt.Sprintf("%d (of %d more, with no quiet %s once due, %d NotReady too)", notReady, other, quietPasses, otherNotReady)
	if len(stayedReady) > 0 {
		got += "; Ready at their end: " + strings.Join(stayedReady, ", ")
	}
	add(fmt.Sprintf("partitions of %s or more whose node was NotReady by their end, of those with %s without an API server or etcd restart (or %s after one) once the grace had passed (the node's heartbeats cross its link)",
		notReadyPartition, quietPasses, controlPlaneSettle), strconv.Itoa(expected), got, notReady == expected)
}

// quietPasses is the quiet time in which the node lifecycle controller surely makes a pass: two
// of its 5 s periods.
const quietPasses = 10 * time.Second

// longestQuiet is the longest stretch of window that no interval of disturbed overlaps.
func longestQuiet(window interval, disturbed []interval) time.Duration {
	sorted := slices.Clone(disturbed)
	slices.SortFunc(sorted, func(a, b interval) int { return a.from.Compare(b.from) })
	longest, at := time.Duration(0), window.from
	for _, d := range sorted {
		if !d.to.After(at) {
			continue
		}
		if d.from.After(window.to) {
			break
		}
		if d.from.After(at) {
			longest = max(longest, d.from.Sub(at))
		}
		at = d.to
	}
	if window.to.After(at) {
		longest = max(longest, window.to.Sub(at))
	}
	return longest
}
