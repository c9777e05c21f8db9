package serviceproxy

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// The handlers only turn events into service keys on the queue; reading the informer caches to
// find a pod's services does not block.

func (p *Proxy) addEventHandlers(services, endpointSlices, pods cache.SharedIndexInformer) error {
	if _, err := services.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    p.enqueueService,
		UpdateFunc: func(old, cur interface{}) { p.onUpdate(old, cur, p.enqueueService) },
		DeleteFunc: p.enqueueService,
	}); err != nil {
		return fmt.Errorf("adding the service event handler: %w", err)
	}
	if _, err := endpointSlices.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    p.enqueueSliceService,
		UpdateFunc: func(old, cur interface{}) { p.onUpdate(old, cur, p.enqueueSliceService) },
		DeleteFunc: p.enqueueSliceService,
	}); err != nil {
		return fmt.Errorf("adding the endpoint slice event handler: %w", err)
	}
	if _, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    p.enqueuePodServices,
		UpdateFunc: func(old, cur interface{}) { p.onUpdate(old, cur, p.enqueuePodServices) },
		DeleteFunc: p.enqueuePodServices,
	}); err != nil {
		return fmt.Errorf("adding the pod event handler: %w", err)
	}
	return nil
}

// onUpdate drops resyncs and enqueues for both versions, since a changed label may move an
// EndpointSlice or Pod from one service to another.
func (p *Proxy) onUpdate(old, cur interface{}, enqueue func(interface{})) {
	oldMeta, oldErr := metaOf(old)
	curMeta, curErr := metaOf(cur)
	if oldErr == nil && curErr == nil && oldMeta.GetResourceVersion() == curMeta.GetResourceVersion() {
		return
	}
	enqueue(old)
	enqueue(cur)
}

func metaOf(obj interface{}) (metav1.Object, error) {
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	object, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("unexpected object of type %T", obj)
	}
	return object, nil
}

func (p *Proxy) enqueueService(obj interface{}) {
	object, err := metaOf(obj)
	if err != nil {
		p.logger.Error(err, "Ignoring service event")
		return
	}
	p.queue.Add(types.NamespacedName{Namespace: object.GetNamespace(), Name: object.GetName()})
}

func (p *Proxy) enqueueSliceService(obj interface{}) {
	object, err := metaOf(obj)
	if err != nil {
		p.logger.Error(err, "Ignoring endpoint slice event")
		return
	}
	if service := object.GetLabels()[discoveryv1.LabelServiceName]; service != "" {
		p.queue.Add(types.NamespacedName{Namespace: object.GetNamespace(), Name: service})
	}
}

func (p *Proxy) enqueuePodServices(obj interface{}) {
	object, err := metaOf(obj)
	if err != nil {
		p.logger.Error(err, "Ignoring pod event")
		return
	}
	services, err := p.services.Services(object.GetNamespace()).List(labels.Everything())
	if err != nil {
		p.logger.Error(err, "Listing services for a pod event", "pod", klog.KRef(object.GetNamespace(), object.GetName()))
		return
	}
	podLabels := labels.Set(object.GetLabels())
	for _, svc := range services {
		if !selects(svc, podLabels) {
			continue
		}
		p.queue.Add(types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name})
	}
}

func selects(svc *corev1.Service, podLabels labels.Set) bool {
	if len(svc.Spec.Selector) == 0 {
		return false
	}
	return labels.SelectorFromValidatedSet(svc.Spec.Selector).Matches(podLabels)
}
