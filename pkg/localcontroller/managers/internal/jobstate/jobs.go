package jobstate

import (
	"context"
	"sync"

	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// Jobs are a manager's jobs by resource key, each with its periodic loop, run within the
// manager's Run. The zero value is not usable: NewJobs gives the loop function.
type Jobs[J any] struct {
	loop func(J, context.Context)

	mu    sync.Mutex
	jobs  map[store.ResourceKey]*entry[J]
	loops managers.LoopGroup
}

type entry[J any] struct {
	job  J
	loop *managers.Loop
}

// NewJobs returns an empty registry whose jobs run loop (until its context ends) within Run.
func NewJobs[J any](loop func(job J, ctx context.Context)) *Jobs[J] {
	return &Jobs[J]{loop: loop, jobs: map[store.ResourceKey]*entry[J]{}}
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
		js.start(e)
	}
}

func (js *Jobs[J]) start(e *entry[J]) {
	if e.loop == nil {
		job := e.job
		e.loop = js.loops.Go(func(ctx context.Context) { js.loop(job, ctx) })
	}
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
	for _, e := range js.jobs {
		js.start(e)
	}
	js.mu.Unlock()
	js.loops.End()
	return true
}
