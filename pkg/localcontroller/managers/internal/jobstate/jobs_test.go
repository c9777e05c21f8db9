package jobstate

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/localcontroller/store"
	"github.com/sedna-go/sedna/pkg/localcontroller/trigger"
)

type countingJob struct {
	mu     sync.Mutex
	passes int
}

func (j *countingJob) pass(context.Context) time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.passes++
	return time.Millisecond
}

func (j *countingJob) count() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.passes
}

// TestJobsRunTheLoopsOfAddedJobsUntilRemoved: a job added before Run starts with Run, one added
// during Run starts when Start is called, Remove returns once the loop stopped, and Run returns
// after its context ended.
func TestJobsRunTheLoopsOfAddedJobsUntilRemoved(t *testing.T) {
	js := NewJobs((*countingJob).pass)
	passed := make(chan store.ResourceKey, 100)
	js.AfterPass = func(key store.ResourceKey) {
		select {
		case passed <- key:
		default:
		}
	}
	early := store.ResourceKey{Kind: "k", Namespace: "ns", Name: "early"}
	late := store.ResourceKey{Kind: "k", Namespace: "ns", Name: "late"}
	earlyJob := js.GetOrAdd(early, func() *countingJob { return &countingJob{} })
	require.Same(t, earlyJob, js.GetOrAdd(early, func() *countingJob { panic("added twice") }))
	js.Start(early) // before Run: waits for it
	require.Zero(t, earlyJob.count())

	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan bool)
	go func() { ran <- js.Run(ctx) }()
	require.Equal(t, early, <-passed)

	lateJob := js.GetOrAdd(late, func() *countingJob { return &countingJob{} })
	js.Start(late)
	require.Eventually(t, func() bool { return lateJob.count() > 0 }, time.Minute, time.Millisecond)

	removed, ok := js.Remove(early)
	require.True(t, ok)
	require.Same(t, earlyJob, removed)
	stopped := earlyJob.count()
	require.Never(t, func() bool { return earlyJob.count() != stopped }, 20*time.Millisecond, time.Millisecond, "a removed job's loop has stopped")
	_, ok = js.Get(early)
	require.False(t, ok)
	js.Start(early) // a removed job is not started again
	_, ok = js.Remove(early)
	require.False(t, ok)

	require.False(t, js.Run(ctx), "a second Run is refused")
	cancel()
	require.True(t, <-ran)
}

func TestPeriod(t *testing.T) {
	require.Equal(t, trigger.DefaultPeriod, Period(0, nil))
	require.Equal(t, time.Second, Period(time.Second, nil))
}

type testObj struct {
	Threshold float64 `json:"threshold"`
}

// TestDecodeTakesOnlyAValidVersionOfItsKind: another kind, an object that does not decode and
// one parse refuses are not taken.
func TestDecodeTakesOnlyAValidVersionOfItsKind(t *testing.T) {
	parse := func(o *testObj) (float64, error) {
		if o.Threshold <= 0 {
			return 0, errors.New("threshold must be positive")
		}
		return o.Threshold * 2, nil
	}
	resource := func(kind, object string) store.Resource {
		return store.Resource{Key: store.ResourceKey{Kind: kind, Namespace: "ns", Name: "j"}, Version: 3, Object: []byte(object)}
	}
	ctx := context.Background()
	obj, spec, ok := Decode(ctx, resource("testjob", `{"threshold":2}`), "testjob", "test", "a TestJob", parse)
	require.True(t, ok)
	require.Equal(t, &testObj{Threshold: 2}, obj)
	require.Equal(t, 4.0, spec)
	for _, r := range []store.Resource{
		resource("otherjob", `{"threshold":2}`),
		resource("testjob", `{"threshold":`),
		resource("testjob", `{"threshold":-1}`),
	} {
		_, _, ok := Decode(ctx, r, "testjob", "test", "a TestJob", parse)
		require.False(t, ok, "%s", r.Object)
	}
}
