package messagelayer

import (
	"context"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// InformerLCIdentities watches the LCs' service accounts and the pods that run as them, and
// nothing else: one pod informer per LC service account, restricted to its namespace and to
// pods with that spec.serviceAccountName, and one service-account informer restricted to its
// name. Cached objects keep only what a token check reads.
type InformerLCIdentities struct {
	kube     kubernetes.Interface
	accounts []accountWatch

	startOnce sync.Once
}

type accountWatch struct {
	namespace, name string
	pods            cache.SharedIndexInformer
	account         cache.SharedIndexInformer
	podFactory      informers.SharedInformerFactory
	accountFactory  informers.SharedInformerFactory
}

var _ LCIdentities = (*InformerLCIdentities)(nil)

// NewInformerLCIdentities prepares the informers for serviceAccounts ("namespace/name").
func NewInformerLCIdentities(kube kubernetes.Interface, serviceAccounts []string) (*InformerLCIdentities, error) {
	if len(serviceAccounts) == 0 {
		return nil, fmt.Errorf("no LC service accounts: every pod in the cluster would have to be watched")
	}
	ids := &InformerLCIdentities{kube: kube}
	for _, sa := range serviceAccounts {
		namespace, name, ok := strings.Cut(sa, "/")
		if !ok || namespace == "" || name == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("LC service account %q is not namespace/name", sa)
		}
		w := accountWatch{namespace: namespace, name: name}
		w.podFactory = informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(namespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.FieldSelector = fields.OneTermEqualSelector("spec.serviceAccountName", name).String()
			}))
		w.accountFactory = informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(namespace),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
			}))
		w.pods = w.podFactory.Core().V1().Pods().Informer()
		w.account = w.accountFactory.Core().V1().ServiceAccounts().Informer()
		if err := w.pods.SetTransform(trimPod); err != nil {
			return nil, fmt.Errorf("trimming cached LC pods: %w", err)
		}
		if err := w.account.SetTransform(trimServiceAccount); err != nil {
			return nil, fmt.Errorf("trimming cached LC service accounts: %w", err)
		}
		ids.accounts = append(ids.accounts, w)
	}
	return ids, nil
}

// CanWatch checks, with one list of each kind limited to one object, that GM may list what the
// informers watch: without the RBAC the informers would retry forever.
func (i *InformerLCIdentities) CanWatch(ctx context.Context) error {
	for _, w := range i.accounts {
		if _, err := i.kube.CoreV1().Pods(w.namespace).List(ctx, metav1.ListOptions{Limit: 1,
			FieldSelector: fields.OneTermEqualSelector("spec.serviceAccountName", w.name).String()}); err != nil {
			return fmt.Errorf("listing the pods of service account %s/%s: %w", w.namespace, w.name, err)
		}
		if _, err := i.kube.CoreV1().ServiceAccounts(w.namespace).List(ctx, metav1.ListOptions{Limit: 1,
			FieldSelector: fields.OneTermEqualSelector("metadata.name", w.name).String()}); err != nil {
			return fmt.Errorf("listing service account %s/%s: %w", w.namespace, w.name, err)
		}
	}
	return nil
}

// Start runs the informers until ctx ends; later calls do nothing.
func (i *InformerLCIdentities) Start(ctx context.Context) {
	i.startOnce.Do(func() {
		for _, w := range i.accounts {
			w.podFactory.Start(ctx.Done())
			w.accountFactory.Start(ctx.Done())
		}
	})
}

// Synced implements LCIdentities.
func (i *InformerLCIdentities) Synced() bool {
	for _, w := range i.accounts {
		if !w.pods.HasSynced() || !w.account.HasSynced() {
			return false
		}
	}
	return true
}

// ServiceAccount implements LCIdentities.
func (i *InformerLCIdentities) ServiceAccount(namespace, name string) (*corev1.ServiceAccount, bool) {
	for _, w := range i.accounts {
		if w.namespace != namespace || w.name != name {
			continue
		}
		obj, ok, err := w.account.GetStore().GetByKey(namespace + "/" + name)
		if err != nil || !ok {
			return nil, false
		}
		sa, ok := obj.(*corev1.ServiceAccount)
		return sa, ok
	}
	return nil, false
}

// Pod implements LCIdentities.
func (i *InformerLCIdentities) Pod(namespace, serviceAccount, name string) (*corev1.Pod, bool) {
	for _, w := range i.accounts {
		if w.namespace != namespace || w.name != serviceAccount {
			continue
		}
		obj, ok, err := w.pods.GetStore().GetByKey(namespace + "/" + name)
		if err != nil || !ok {
			return nil, false
		}
		pod, ok := obj.(*corev1.Pod)
		return pod, ok
	}
	return nil, false
}

// trimPod keeps what a token check reads of a pod.
func trimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a tombstone: kept as it is
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID,
			ResourceVersion: pod.ResourceVersion, DeletionTimestamp: pod.DeletionTimestamp},
		Spec: corev1.PodSpec{NodeName: pod.Spec.NodeName, ServiceAccountName: pod.Spec.ServiceAccountName},
	}, nil
}

// trimServiceAccount keeps what a token check reads of a service account.
func trimServiceAccount(obj any) (any, error) {
	sa, ok := obj.(*corev1.ServiceAccount)
	if !ok {
		return obj, nil
	}
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa.Name, Namespace: sa.Namespace, UID: sa.UID,
		ResourceVersion: sa.ResourceVersion, DeletionTimestamp: sa.DeletionTimestamp}}, nil
}
