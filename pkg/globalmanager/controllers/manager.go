package controllers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/globalmanager/config"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"

	sednainformers "github.com/sedna-go/sedna/pkg/client/informers/externalversions"
)

// Manager builds the enabled features, syncs their caches, primes the LC desired state and runs
// them.
type Manager struct {
	cfg      *config.Config
	registry Registry
	deps     runtime.Dependencies
	register func(kind string, receiver runtime.ReportReceiver)

	startOnce sync.Once
	// synced is closed when start has returned; startErr is its result, read only after that.
	synced   chan struct{}
	startErr error
	// features are the built controllers, set by start.
	features []feature
}

type feature struct {
	name       string
	controller runtime.FeatureController
}

// NewManager returns a manager. deps must carry the clients, downstream, bindings, recorder and
// metrics registerer; the manager adds the informer factories. register routes a report kind to
// its receiver.
func NewManager(cfg *config.Config, registry Registry, deps runtime.Dependencies,
	register func(kind string, receiver runtime.ReportReceiver)) *Manager {
	return &Manager{cfg: cfg, registry: registry, deps: deps, register: register, synced: make(chan struct{})}
}

// Start builds the features and starts their informers, which live until ctx ends, and waits
// until their caches are synced. Only the first call does this; later and concurrent calls wait
// for it and return its result. It only reads (lists and watches; event handlers only enqueue),
// so a standby calls it before it leads: a warm standby that takes over without listing the
// cluster first, at the price of holding the same caches as the leader.
func (m *Manager) Start(ctx context.Context) error {
	m.startOnce.Do(func() {
		m.startErr = m.start(ctx)
		close(m.synced)
	})
	return m.startErr
}

func (m *Manager) start(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	minResync := time.Duration(m.cfg.MinResyncPeriodSeconds) * time.Second
	resync := minResync + time.Duration(rand.Int64N(int64(minResync)))
	deps := &m.deps
	deps.KubeInformers = informers.NewSharedInformerFactoryWithOptions(deps.KubeClient, resync,
		informers.WithNamespace(m.cfg.Namespace))
	deps.SednaInformers = sednainformers.NewSharedInformerFactoryWithOptions(deps.SednaClient, resync,
		sednainformers.WithNamespace(m.cfg.Namespace))
	if deps.ChildInformers == nil {
		deps.ChildInformers = runtime.NewChildInformers(deps.KubeClient, m.cfg.Namespace, resync)
	}
	if deps.WorkerTokenInformers == nil {
		deps.WorkerTokenInformers = runtime.NewWorkerTokenInformers(deps.KubeClient, m.cfg.Namespace)
	}
	if deps.Models == nil {
		deps.Models = runtime.NewBindings()
	}
	if deps.Secrets == nil {
		deps.Secrets = runtime.NewBindings()
	}

	for _, f := range m.registry {
		if !m.cfg.FeatureEnabled(f.Name) {
			logger.Info("Feature disabled", "feature", f.Name)
			continue
		}
		c, err := f.New(*deps)
		if err != nil {
			return fmt.Errorf("building feature %s: %w", f.Name, err)
		}
		if receiver, ok := c.(runtime.ReportReceiver); ok {
			for _, kind := range receiver.ReportKinds() {
				m.register(kind, receiver)
			}
		}
		m.features = append(m.features, feature{name: f.Name, controller: c})
	}

	deps.KubeInformers.Start(ctx.Done())
	deps.SednaInformers.Start(ctx.Done())
	deps.WorkerTokenInformers.Start(ctx.Done())
	deps.ChildInformers.Start(ctx.Done())
	for typ, ok := range deps.KubeInformers.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("kube informer cache for %v did not sync", typ)
		}
	}
	for typ, ok := range deps.SednaInformers.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("sedna informer cache for %v did not sync", typ)
		}
	}
	for typ, ok := range deps.WorkerTokenInformers.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("worker-token secret cache for %v did not sync", typ)
		}
	}
	if err := deps.ChildInformers.WaitForCacheSync(ctx.Done()); err != nil {
		return err
	}
	logger.Info("Caches synced", "features", len(m.features))
	return nil
}

// Run blocks until ctx ends. It calls Start (with ctx, unless Start was called before), primes
// the LC desired state from the caches, calls ready — then, and only then, may LCs be served a
// snapshot — and runs the controllers. If ctx ends first (a leader that lost the Lease while a
// standby's Start still syncs), Run returns nil without waiting for the sync, and never calls
// ready.
func (m *Manager) Run(ctx context.Context, ready func()) error {
	logger := klog.FromContext(ctx)
	go func() { _ = m.Start(ctx) }() // a no-op (or a wait) when Start was called before; the result is read below
	select {
	case <-m.synced:
	case <-ctx.Done():
		return nil
	}
	if m.startErr != nil {
		return m.startErr
	}
	if ctx.Err() != nil {
		return nil
	}
	for _, f := range m.features {
		if primer, ok := f.controller.(runtime.DownstreamPrimer); ok {
			if err := primer.PrimeDownstream(ctx); err != nil {
				return fmt.Errorf("priming the LC desired state of %s: %w", f.name, err)
			}
		}
	}
	if ctx.Err() != nil {
		return nil // the Lease is gone: no LC may be served
	}
	logger.Info("Caches synced and desired state primed", "features", len(m.features))
	ready()

	var wg sync.WaitGroup
	for _, f := range m.features {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.controller.Run(klog.NewContext(ctx, logger.WithValues("feature", f.name)), m.cfg.FeatureWorkers(f.name))
		}()
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}
