package chaos

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sedna-go/sedna/test/localcluster"
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

// longCut is a partition of at least notReadyPartition and what its node's Ready condition was
// when it was read, shortly before the link came back (span.to).
type longCut struct {
	node string
	span interval
	// notReady: the node was not Ready; unknown: it could not be read.
	notReady, unknown bool
}

// nodeReadBefore is how long before a long partition's end its node's condition is read, so that
// the read (bounded by it) does not stretch the partition.
const nodeReadBefore = 5 * time.Second

// noteLongCut records a partition of at least notReadyPartition that began at from, reading
// whether its node is NotReady now, at most nodeReadBefore before the link comes back.
func (c *campaign) noteLongCut(ctx context.Context, node string, from time.Time) {
	readCtx, cancel := context.WithTimeout(ctx, nodeReadBefore-time.Second)
	defer cancel()
	n, err := c.s.Kube.CoreV1().Nodes().Get(readCtx, node, metav1.GetOptions{})
	cut := longCut{node: node, span: interval{from, time.Now()}, unknown: err != nil}
	if err != nil {
		c.logf("chaos: reading node %s near the end of its partition: %v", node, err)
	} else {
		// The node lifecycle controller sets Ready to Unknown (kubectl's NotReady).
		cut.notReady = !localcluster.NodeReady(n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.longCuts = append(c.longCuts, cut)
}

// notReadyDue is how long after the cut, or after the node lifecycle controller could look again
// if it could not at the cut, a node is NotReady at the latest: up to one pass (5 s) until the
// controller sees the node's last renewal, the grace (40 s), and one pass more.
const notReadyDue = 50 * time.Second

// notReadyRow adds the row of the long partitions. The node lifecycle controller marks a node
// NotReady at its first pass (every 5 s) that finds no renewal of the node's Lease for the grace
// period (40 s), and skips its checks while it cannot read the Lease: during an API server or
// etcd restart and while the restarted control plane settles. So a partition must have left its
// node NotReady when, from notReadyDue after its cut (or after the disturbance the cut fell
// into ended), it held a quiet stretch of at least quietPasses; the others are counted apart.
// The row also fails when no long partition at all left its node NotReady: then nothing shows
// that a cut-off node's heartbeats stop.
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
	expected, notReady, other, otherNotReady, unknown := 0, 0, 0, 0, 0
	var stayedReady []string
	for _, cut := range cuts {
		if cut.unknown {
			unknown++
			continue
		}
		looks := cut.span.from
		for _, d := range disturbed {
			if !d.from.After(looks) && d.to.After(looks) {
				looks = d.to
			}
		}
		due := interval{looks.Add(notReadyDue), cut.span.to}
		switch quiet := due.to.After(due.from) && longestQuiet(due, disturbed) >= quietPasses; {
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
	got := fmt.Sprintf("%d (of %d more, with no quiet %s once due, %d NotReady too; %d not read)", notReady, other, quietPasses, otherNotReady, unknown)
	if len(stayedReady) > 0 {
		got += "; Ready at their end: " + strings.Join(stayedReady, ", ")
	}
	add(fmt.Sprintf("partitions of %s or more whose node was NotReady by their end, of those with %s without an API server or etcd restart (or %s after one) once the node was due NotReady; and at least one NotReady (the node's heartbeats cross its link)",
		notReadyPartition, quietPasses, controlPlaneSettle), strconv.Itoa(expected), got,
		notReady == expected && notReady+otherNotReady > 0)
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
