package runtime

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/util/workqueue"
	testingclock "k8s.io/utils/clock/testing"
)

// TestReportsOfOneObjectInABurstAreOneSync: a hundred reports within ReportCoalescing enqueue
// the object once, after the delay, so its status is written once for the burst.
func TestReportsOfOneObjectInABurstAreOneSync(t *testing.T) {
	clock := testingclock.NewFakeClock(time.Now())
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{
			DelayingQueue: workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[string]{Clock: clock}),
		})
	defer queue.ShutDown()
	for range 100 {
		EnqueueReport(queue, "ns/a")
	}
	EnqueueReport(queue, "ns/b")
	require.Zero(t, queue.Len(), "nothing is synced before the burst is over")
	clock.Step(ReportCoalescing)
	require.Eventually(t, func() bool { return queue.Len() == 2 }, 10*time.Second, 5*time.Millisecond)
	first, _ := queue.Get()
	second, _ := queue.Get()
	require.ElementsMatch(t, []string{"ns/a", "ns/b"}, []string{first, second}, "one entry per object")
	require.Zero(t, queue.Len())
}
