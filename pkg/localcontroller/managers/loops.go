package managers

import (
	"context"
	"sync"
)

// Loop is one goroutine of a LoopGroup.
type Loop struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// Stop cancels the loop and waits until its function has returned. A nil Loop (never started)
// is already stopped.
func (l *Loop) Stop() {
	if l == nil {
		return
	}
	l.cancel()
	<-l.done
}

// LoopGroup runs a manager's per-resource goroutines within the manager's Run: loops asked for
// before Run wait for it (Go returns nil; Run's caller starts them after Begin), and none starts
// once Run is ending.
type LoopGroup struct {
	mu      sync.Mutex
	ctx     context.Context
	stopped bool
	wg      sync.WaitGroup
}

// Begin records Run's context; it returns false if Run was already called.
func (g *LoopGroup) Begin(ctx context.Context) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ctx != nil {
		return false
	}
	g.ctx = ctx
	return true
}

// Go runs fn in a goroutine with a context derived from Run's, or returns nil if Run has not
// begun or is ending.
func (g *LoopGroup) Go(fn func(ctx context.Context)) *Loop {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ctx == nil || g.stopped {
		return nil
	}
	ctx, cancel := context.WithCancel(g.ctx)
	loop := &Loop{cancel: cancel, done: make(chan struct{})}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer close(loop.done)
		fn(ctx)
	}()
	return loop
}

// End waits for Run's context to end, refuses new loops and waits for the running ones.
func (g *LoopGroup) End() {
	g.mu.Lock()
	ctx := g.ctx
	g.mu.Unlock()
	<-ctx.Done()
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	g.wg.Wait()
}
