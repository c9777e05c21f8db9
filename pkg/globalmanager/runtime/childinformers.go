package runtime

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
)

// ChildSelector selects the children of owners of kind: every child GM creates carries
// <kind lower>.sedna.io/uid (workers.Labels).
func ChildSelector(kind string) string {
	return strings.ToLower(kind) + ".sedna.io/uid"
}

// ChildInformers hands out, per owner kind, an informer factory that lists and watches only the
// objects carrying that kind's ChildSelector: GM caches the Deployments, Services and pods it
// made, not every one in the cluster. A name taken by an object without the labels is not in the
// cache; ControlledLive tells a create's AlreadyExists apart.
type ChildInformers struct {
	client    kubernetes.Interface
	namespace string
	resync    time.Duration

	mu        sync.Mutex
	factories map[string]informers.SharedInformerFactory
}

// NewChildInformers returns the factories' source: client, limited to namespace ("" for all).
func NewChildInformers(client kubernetes.Interface, namespace string, resync time.Duration) *ChildInformers {
	return &ChildInformers{client: client, namespace: namespace, resync: resync, factories: map[string]informers.SharedInformerFactory{}}
}

// For returns the factory of kind's children, the same one on every call.
func (c *ChildInformers) For(kind string) informers.SharedInformerFactory {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := strings.ToLower(kind)
	if f, ok := c.factories[key]; ok {
		return f
	}
	selector := ChildSelector(kind)
	f := informers.NewSharedInformerFactoryWithOptions(c.client, c.resync, informers.WithNamespace(c.namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	c.factories[key] = f
	return f
}

// Start starts the informers requested so far.
func (c *ChildInformers) Start(stop <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.factories {
		f.Start(stop)
	}
}

// WaitForCacheSync waits for the started informers and returns an error naming one that did not
// sync.
func (c *ChildInformers) WaitForCacheSync(stop <-chan struct{}) error {
	c.mu.Lock()
	factories := make(map[string]informers.SharedInformerFactory, len(c.factories))
	for k, f := range c.factories {
		factories[k] = f
	}
	c.mu.Unlock()
	for kind, f := range factories {
		for typ, ok := range f.WaitForCacheSync(stop) {
			if !ok {
				return fmt.Errorf("cache of the %s children %v did not sync", kind, typ)
			}
		}
	}
	return nil
}

// ChildInformerFactory is the factory a feature takes its children's informers from: the one of
// ChildInformers filtered for ownerKind, or KubeInformers when ChildInformers is not set (tests
// that fill KubeInformers' caches themselves).
func (d Dependencies) ChildInformerFactory(ownerKind string) informers.SharedInformerFactory {
	if d.ChildInformers != nil {
		return d.ChildInformers.For(ownerKind)
	}
	return d.KubeInformers
}

// ControlledLive is for a create that failed with AlreadyExists: the child caches hold only
// labeled objects, so the name may be taken by one the cache never sees. It reads the object
// from the API server with get and reports whether owner controls it (then the cache only lags).
func ControlledLive(ctx context.Context, owner metav1.Object, get func(ctx context.Context) (metav1.Object, error)) (bool, error) {
	obj, err := get(ctx)
	if err != nil {
		return false, err
	}
	ref := metav1.GetControllerOf(obj)
	return ref != nil && ref.UID == owner.GetUID(), nil
}
