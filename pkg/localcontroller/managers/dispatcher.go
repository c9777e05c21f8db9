package managers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// Dispatcher routes resources from GM and worker messages to the manager of their kind. It has
// the shape of the GM client's handler (ResourceChanged, ResourceDeleted). The set of managers is
// fixed at construction, so a Dispatcher needs no lock and is safe for concurrent use.
type Dispatcher struct {
	managers map[string]Manager
}

// NewDispatcher returns a Dispatcher for managers. A kind that is empty, not lower case or taken
// by two managers is an error: it would silently route a kind's resources to the wrong manager or
// to none.
func NewDispatcher(managers ...Manager) (*Dispatcher, error) {
	d := &Dispatcher{managers: make(map[string]Manager, len(managers))}
	for _, manager := range managers {
		if manager == nil {
			return nil, fmt.Errorf("building the manager dispatcher: a manager is nil")
		}
		kind := manager.Kind()
		switch {
		case kind == "":
			return nil, fmt.Errorf("building the manager dispatcher: a manager (%T) has an empty kind", manager)
		case kind != strings.ToLower(kind):
			return nil, fmt.Errorf("building the manager dispatcher: kind %q of %T is not lower case", kind, manager)
		}
		if existing, taken := d.managers[kind]; taken {
			return nil, fmt.Errorf("building the manager dispatcher: kind %q is claimed by both %T and %T", kind, existing, manager)
		}
		d.managers[kind] = manager
	}
	return d, nil
}

// Kinds returns the kinds that have a manager, sorted.
func (d *Dispatcher) Kinds() []string {
	kinds := make([]string, 0, len(d.managers))
	for kind := range d.managers {
		kinds = append(kinds, kind)
	}
	sort.Strings(kinds)
	return kinds
}

// ResourceChanged hands r to the manager of its kind. Kinds without a manager (secrets, which the
// managers read from the store when they need them) only live in the store.
func (d *Dispatcher) ResourceChanged(ctx context.Context, r store.Resource) {
	manager, ok := d.managers[r.Key.Kind]
	if !ok {
		klog.FromContext(ctx).V(4).Info("No manager for the kind; the resource is kept in the store only", "resource", r.Key.String())
		return
	}
	manager.ResourceChanged(ctx, r)
}

// ResourceDeleted tells the manager of key's kind that the resource is gone.
func (d *Dispatcher) ResourceDeleted(ctx context.Context, key store.ResourceKey) {
	manager, ok := d.managers[key.Kind]
	if !ok {
		klog.FromContext(ctx).V(4).Info("No manager for the kind of a deleted resource", "resource", key.String())
		return
	}
	manager.ResourceDeleted(ctx, key)
}

// SnapshotApplied tells every manager that implements SnapshotObserver that GM's snapshot of the
// node has been applied, in kind order.
func (d *Dispatcher) SnapshotApplied(ctx context.Context) {
	for _, kind := range d.Kinds() {
		if observer, ok := d.managers[kind].(SnapshotObserver); ok {
			observer.SnapshotApplied(ctx)
		}
	}
}

// WorkerMessageHandler returns the handler for worker messages whose ownerKind is kind (compared
// in lower case, as upstream's LC did).
func (d *Dispatcher) WorkerMessageHandler(kind string) (WorkerMessageHandler, bool) {
	handler, ok := d.managers[strings.ToLower(kind)].(WorkerMessageHandler)
	return handler, ok
}

// HandleWorkerMessage routes msg to the manager of its ownerKind. Without one it returns an error
// wrapping ErrNoManager.
func (d *Dispatcher) HandleWorkerMessage(ctx context.Context, msg WorkerMessage) error {
	handler, ok := d.WorkerMessageHandler(msg.OwnerKind)
	if !ok {
		return fmt.Errorf("worker message about %s/%s: ownerKind %q: %w", msg.Namespace, msg.OwnerName, msg.OwnerKind, ErrNoManager)
	}
	return handler.HandleWorkerMessage(ctx, msg)
}

// Replay hands every resource in st to the manager of its kind, in store order. The LC calls it
// once at start: the GM client only reports what changes, so without it the managers would not
// resume the work for resources that were stored before a restart.
func (d *Dispatcher) Replay(ctx context.Context, st *store.Store) error {
	resources, err := st.ListResources("")
	if err != nil {
		return fmt.Errorf("replaying stored resources to the managers: %w", err)
	}
	logger := klog.FromContext(ctx)
	replayed := 0
	for _, resource := range resources {
		if _, ok := d.managers[resource.Key.Kind]; !ok {
			continue
		}
		d.ResourceChanged(ctx, resource)
		replayed++
	}
	logger.V(2).Info("Replayed stored resources to the managers", "stored", len(resources), "replayed", replayed)
	return nil
}

// Run runs every manager that implements Runner until ctx is done, and returns once all of them
// have returned.
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, kind := range d.Kinds() {
		runner, ok := d.managers[kind].(Runner)
		if !ok {
			continue
		}
		wg.Go(func() { runner.Run(ctx) })
	}
	wg.Wait()
}
