package serviceproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

const defaultDialTimeout = 5 * time.Second

// Options configures Run.
type Options struct {
	// DialTimeout bounds each attempt to connect to an endpoint. Defaults to 5s.
	DialTimeout time.Duration
}

// Proxy serves the cluster IPs of a local cluster's Services. It is created by Run and stops when
// Run's context ends; Wait returns once it has stopped.
type Proxy struct {
	opts     Options
	logger   klog.Logger
	factory  informers.SharedInformerFactory
	services corelisters.ServiceLister
	slices   discoverylisters.EndpointSliceLister
	pods     corelisters.PodLister
	queue    workqueue.TypedRateLimitingInterface[types.NamespacedName]
	conns    *connSet
	// wg counts accept loops and the connections they serve.
	wg   sync.WaitGroup
	done chan struct{}

	// mu guards ports. Only the worker changes it; WaitForService reads it.
	mu    sync.Mutex
	ports map[types.NamespacedName]map[portKey]*portProxy
}

// Run starts the proxy's informers on Services, EndpointSlices and Pods in all namespaces, waits
// for their caches to sync and returns; listeners open shortly afterwards (WaitForService waits
// for a given Service). The proxy runs until ctx ends, then closes its listeners and every proxied
// connection, and stops its informers; Wait returns once all of that is done. Run returns an
// error, with nothing left running, if the caches cannot sync before ctx ends.
func Run(ctx context.Context, client kubernetes.Interface, opts Options) (*Proxy, error) {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = defaultDialTimeout
	}
	logger := klog.FromContext(ctx).WithName("serviceproxy")
	ctx = klog.NewContext(ctx, logger)

	factory := informers.NewSharedInformerFactory(client, 0)
	serviceInformer := factory.Core().V1().Services()
	sliceInformer := factory.Discovery().V1().EndpointSlices()
	podInformer := factory.Core().V1().Pods()
	p := &Proxy{
		opts:     opts,
		logger:   logger,
		factory:  factory,
		services: serviceInformer.Lister(),
		slices:   sliceInformer.Lister(),
		pods:     podInformer.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[types.NamespacedName](),
			workqueue.TypedRateLimitingQueueConfig[types.NamespacedName]{Name: "serviceproxy"}),
		conns: newConnSet(),
		done:  make(chan struct{}),
		ports: map[types.NamespacedName]map[portKey]*portProxy{},
	}
	if err := p.addEventHandlers(serviceInformer.Informer(), sliceInformer.Informer(), podInformer.Informer()); err != nil {
		p.queue.ShutDown()
		return nil, err
	}

	factory.Start(ctx.Done())
	if !cache.WaitForNamedCacheSync("serviceproxy", ctx.Done(),
		serviceInformer.Informer().HasSynced, sliceInformer.Informer().HasSynced, podInformer.Informer().HasSynced) {
		p.queue.ShutDown()
		factory.Shutdown() // ctx has ended, so the informers are stopping
		return nil, fmt.Errorf("waiting for the service proxy's caches to sync: %w", context.Cause(ctx))
	}
	go p.run(ctx)
	logger.V(2).Info("Service proxy started")
	return p, nil
}

// Wait blocks until the proxy has stopped after Run's context ended: listeners and proxied
// connections closed, informers stopped.
func (p *Proxy) Wait() {
	<-p.done
}

func (p *Proxy) run(ctx context.Context) {
	defer close(p.done)
	// One worker: services are independent, but listener churn is rare and one worker keeps the
	// port table's writers to one.
	workerDone := make(chan struct{})
	go func() {
		defer close(workerDone)
		for p.processNextItem(ctx) {
		}
	}()
	<-ctx.Done()
	p.queue.ShutDown()
	<-workerDone

	p.mu.Lock()
	for service, ports := range p.ports {
		for _, pp := range ports {
			_ = pp.listener.Close() // shutdown; the accept loop sees net.ErrClosed
		}
		delete(p.ports, service)
	}
	p.mu.Unlock()
	p.conns.closeAll()
	p.wg.Wait()
	p.factory.Shutdown()
	p.logger.V(2).Info("Service proxy stopped")
}

func (p *Proxy) processNextItem(ctx context.Context) bool {
	key, shutdown := p.queue.Get()
	if shutdown {
		return false
	}
	defer p.queue.Done(key)
	if err := p.sync(ctx, key); err != nil {
		p.logger.Error(err, "Syncing service failed; retrying", "service", key)
		p.queue.AddRateLimited(key)
		return true
	}
	p.queue.Forget(key)
	return true
}

// sync converges the listeners of one service to its spec and hands them its current endpoints.
func (p *Proxy) sync(ctx context.Context, key types.NamespacedName) error {
	logger := klog.LoggerWithValues(p.logger, "service", key)
	svc, err := p.services.Services(key.Namespace).Get(key.Name)
	if apierrors.IsNotFound(err) {
		svc = nil
	} else if err != nil {
		return fmt.Errorf("getting service %s from the cache: %w", key, err)
	}
	desired := tcpPorts(svc)
	endpoints := make(map[portKey][]string, len(desired))
	for k, port := range desired {
		eps, err := p.endpoints(svc, port)
		if err != nil {
			return err
		}
		endpoints[k] = eps
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	current := p.ports[key]
	if current == nil {
		current = map[portKey]*portProxy{}
	}
	for k, pp := range current {
		if _, ok := desired[k]; !ok {
			_ = pp.listener.Close() // the accept loop sees net.ErrClosed and ends
			delete(current, k)
			logger.V(2).Info("Closed listener", "address", k.address, "port", k.name)
		}
	}
	var errs []error
	for k := range desired {
		pp := current[k]
		if pp == nil {
			listener, err := (&net.ListenConfig{}).Listen(ctx, "tcp", k.address)
			if err != nil {
				errs = append(errs, fmt.Errorf("listening on %s for port %q of service %s: %w", k.address, k.name, key, err))
				continue
			}
			pp = &portProxy{
				service:     key,
				portName:    k.name,
				listener:    listener,
				dialTimeout: p.opts.DialTimeout,
				conns:       p.conns,
				logger:      klog.LoggerWithValues(logger, "address", k.address, "port", k.name),
			}
			current[k] = pp
			p.wg.Add(1)
			go pp.acceptLoop(ctx, &p.wg)
			logger.V(2).Info("Opened listener", "address", k.address, "port", k.name)
		}
		if pp.setEndpoints(endpoints[k]) {
			logger.V(2).Info("Endpoints changed", "address", k.address, "port", k.name, "endpoints", endpoints[k])
		}
	}
	if len(current) == 0 {
		delete(p.ports, key)
	} else {
		p.ports[key] = current
	}
	return errors.Join(errs...)
}

// endpoints merges the service port's ready endpoints from EndpointSlices and selected Pods.
func (p *Proxy) endpoints(svc *corev1.Service, port corev1.ServicePort) ([]string, error) {
	sliceSelector := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name})
	endpointSlices, err := p.slices.EndpointSlices(svc.Namespace).List(sliceSelector)
	if err != nil {
		return nil, fmt.Errorf("listing endpoint slices of service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	var pods []*corev1.Pod
	if len(svc.Spec.Selector) > 0 {
		pods, err = p.pods.Pods(svc.Namespace).List(labels.SelectorFromValidatedSet(svc.Spec.Selector))
		if err != nil {
			return nil, fmt.Errorf("listing pods of service %s/%s: %w", svc.Namespace, svc.Name, err)
		}
	}
	return mergeEndpoints(sliceEndpoints(endpointSlices, port.Name), podEndpoints(svc, port, pods)), nil
}

// Hosts returns hosts-file lines for every Service with a cluster IP, sorted, one per line:
// "<clusterIP> <svc>.<ns> <svc>.<ns>.svc <svc>.<ns>.svc.cluster.local". It reads the informer
// cache, so it can name a Service whose listeners are not open yet.
func (p *Proxy) Hosts() string {
	services, err := p.services.List(labels.Everything())
	if err != nil {
		// The cache lister never fails for labels.Everything; an empty file is the safe answer.
		p.logger.Error(err, "Listing services for the hosts file")
		return ""
	}
	var lines []string
	for _, svc := range services {
		if !hasClusterIP(svc) {
			continue
		}
		name := svc.Name + "." + svc.Namespace
		lines = append(lines, fmt.Sprintf("%s %s %s.svc %s.svc.cluster.local", svc.Spec.ClusterIP, name, name, name))
	}
	if len(lines) == 0 {
		return ""
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// WaitForService returns once the proxy listens on every TCP port of the named Service as its
// latest spec in the cache defines it. It fails when ctx ends or the proxy stops first.
func (p *Proxy) WaitForService(ctx context.Context, namespace, name string) error {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	var lastState string
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		select {
		case <-p.done:
			return false, errors.New("the service proxy has stopped")
		default:
		}
		svc, err := p.services.Services(namespace).Get(name)
		if err != nil {
			lastState = err.Error()
			return false, nil
		}
		if !hasClusterIP(svc) {
			lastState = "the service has no cluster IP"
			return false, nil
		}
		desired := tcpPorts(svc)
		p.mu.Lock()
		defer p.mu.Unlock()
		current := p.ports[key]
		for k := range desired {
			if current[k] == nil {
				lastState = "not listening on " + k.address
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the listeners of service %s (last state: %s): %w", key, lastState, err)
	}
	return nil
}
