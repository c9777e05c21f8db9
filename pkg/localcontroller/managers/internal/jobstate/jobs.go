package jobstate

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/internal/rounds"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
	"github.com/sedna-go/sedna/pkg/localcontroller/trigger"
)

// Jobs are a manager's jobs by resource key, each with its periodic loop of passes, run within
// the manager's Run. The zero value is not usable: NewJobs gives the pass.
type Jobs[J any] struct {
	pass func(J, context.Context) time.Duration

	// AfterPass, when set (by tests, before Run), is called after every periodic pass of a job.
	AfterPass func(key store.ResourceKey)

	mu    sync.Mutex
	jobs  map[store.ResourceKey]*entry[J]
	loops managers.LoopGroup
}

type entry[J any] struct {
	job  J
	loop *managers.Loop
}

// NewJobs returns an empty registry. Within Run, each job's loop calls pass, with the job's name
// in the logger of ctx, and then waits the period pass returned (rounds.RunPasses).
func NewJobs[J any](pass func(job J, ctx context.Context) time.Duration) *Jobs[J] {
	return &Jobs[J]{pass: pass, jobs: map[store.ResourceKey]*entry[J]{}}
}

// Get returns the job of key, if there is one.
func (js *Jobs[J]) Get(key store.ResourceKey) (J, bool) {
	js.mu.Lock()
	defer js.mu.Unlock()
	e, ok := js.jobs[key]
	if !ok {
		var zero J
		return zero, false
	}
	return e.job, true
}

// GetOrAdd returns the job of key, adding the one create returns when there is none.
func (js *Jobs[J]) GetOrAdd(key store.ResourceKey, create func() J) J {
	js.mu.Lock()
	defer js.mu.Unlock()
	e, ok := js.jobs[key]
	if !ok {
		e = &entry[J]{job: create()}
		js.jobs[key] = e
	}
	return e.job
}

// Start runs the loop of the job of key if Run is running and the loop is not; a job removed
// meanwhile is not started.
func (js *Jobs[J]) Start(key store.ResourceKey) {
	js.mu.Lock()
	defer js.mu.Unlock()
	if e, ok := js.jobs[key]; ok {
		js.start(key, e)
	}
}

func (js *Jobs[J]) start(key store.ResourceKey, e *entry[J]) {
	if e.loop == nil {
		job := e.job
		e.loop = js.loops.Go(func(ctx context.Context) { js.run(ctx, key, job) })
	}
}

func (js *Jobs[J]) run(ctx context.Context, key store.ResourceKey, job J) {
	ctx = klog.NewContext(ctx, klog.FromContext(ctx).WithValues("job", klog.KRef(key.Namespace, key.Name)))
	var after func()
	if js.AfterPass != nil {
		after = func() { js.AfterPass(key) }
	}
	rounds.RunPasses(ctx, func(ctx context.Context) time.Duration { return js.pass(job, ctx) }, after)
}

// Remove forgets the job of key and returns it once its loop has stopped.
func (js *Jobs[J]) Remove(key store.ResourceKey) (J, bool) {
	js.mu.Lock()
	e, ok := js.jobs[key]
	delete(js.jobs, key)
	js.mu.Unlock()
	if !ok {
		var zero J
		return zero, false
	}
	// Once out of the map, e is never started again: its loop is read under no lock.
	e.loop.Stop()
	return e.job, true
}

// Run starts the loops of the jobs added so far, and of those started later, and returns once ctx
// ended and all of them stopped. It returns false at once if Run was called before.
func (js *Jobs[J]) Run(ctx context.Context) bool {
	if !js.loops.Begin(ctx) {
		return false
	}
	js.mu.Lock()
	for key, e := range js.jobs {
		js.start(key, e)
	}
	js.mu.Unlock()
	js.loops.End()
	return true
}

// Period is the wait between a job's passes: override when positive (tests), else the train
// trigger's checkPeriodSeconds (train may be nil before a valid spec), else trigger.DefaultPeriod.
func Period(override time.Duration, train *trigger.Trigger) time.Duration {
	period := override
	if period <= 0 && train != nil {
		period = train.Period()
	}
	if period <= 0 {
		period = trigger.DefaultPeriod
	}
	return period
}

// Decode takes a job version GM sent: r must be of kind, its object must decode as T and parse
// must accept it. What cannot be taken is logged, naming the manager (noun, "incremental
// learning") and the object (what, "an IncrementalLearningJob"), and ok is false: the previous
// valid version, if any, keeps driving the job.
func Decode[T, S any](ctx context.Context, r store.Resource, kind, noun, what string, parse func(*T) (S, error)) (obj *T, spec S, ok bool) {
	logger := klog.FromContext(ctx)
	if r.Key.Kind != kind {
		logger.Error(nil, "Ignoring a resource of another kind handed to the "+noun+" manager", "kind", r.Key.Kind)
		return nil, spec, false
	}
	obj = new(T)
	if err := json.Unmarshal(r.Object, obj); err != nil {
		logger.Error(err, "Ignoring "+what+" from GM that does not parse", "version", r.Version)
		return nil, spec, false
	}
	spec, err := parse(obj)
	if err != nil {
		logger.Error(err, "Ignoring "+what+" with an invalid spec", "version", r.Version)
		return nil, spec, false
	}
	return obj, spec, true
}
