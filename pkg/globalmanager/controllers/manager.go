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
}

// NewManager returns a manager. deps must carry the clients, downstream, bindings, recorder and
// metrics registerer; the manager adds the informer factories. register routes a report kind to
// its receiver.
func NewManager(cfg *config.Config, registry Registry, deps runtime.Dependencies,
	register func(kind string, receiver runtime.ReportReceiver)) *Manager {
	return &Manager{cfg: cfg, registry: registry, deps: deps, register: register}
}

// Run blocks until ctx ends. ready is called once the caches are synced and every existing object
// is in the LC desired state: then, and only then, may LCs be served a snapshot.
func (m *Manager) Run(ctx context.Context, ready func()) error {
	logger := klog.FromContext(ctx)
	minResync := time.Duration(m.cfg.MinResyncPeriodSeconds) * time.Second
	resync := minResync + time.Duration(rand.Int64N(int64(minResync)))
	deps := m.deps
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

	type running struct {
		name       string
		controller runtime.FeatureController
	}
	var features []running
	for _, f := range m.registry {
		if !m.cfg.FeatureEnabled(f.Name) {
			logger.Info("Feature disabled", "feature", f.Name)
			continue
		}
		c, err := f.New(deps)
		if err != nil {
			return fmt.Errorf("building feature %s: %w", f.Name, err)
		}
		if receiver, ok := c.(runtime.ReportReceiver); ok {
			for _, kind := range receiver.ReportKinds() {
				m.register(kind, receiver)
			}
		}
		features = append(features, running{name: f.Name, controller: c})
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
	for _, f := range features {
		if primer, ok := f.controller.(runtime.DownstreamPrimer); ok {
			if err := primer.PrimeDownstream(ctx); err != nil {
				return fmt.Errorf("priming the LC desired state of %s: %w", f.name, err)
			}
		}
	}
	logger.Info("Caches synced and desired state primed", "features", len(features))
	ready()

	var wg sync.WaitGroup
	for _, f := range features {
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
