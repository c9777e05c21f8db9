// Package workloadtest is the unit-test fixture of the multi-edge controllers: a shared workload
// controller over fake clientsets whose informer caches the test refreshes from the fake API.
package workloadtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubeinformers "k8s.io/client-go/informers"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	sednafake "github.com/sedna-go/sedna/pkg/client/clientset/versioned/fake"
	sednainformers "github.com/sedna-go/sedna/pkg/client/informers/externalversions"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/workload"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

// Downstream records what was published per key and node.
type Downstream struct {
	Objects map[channel.Key]map[string][]byte
}

// Publish implements runtime.Downstream.
func (d *Downstream) Publish(key channel.Key, _ uint64, object []byte, nodes ...string) {
	copies := map[string][]byte{}
	for _, n := range nodes {
		copies[n] = object
	}
	d.Objects[key] = copies
}

// PublishEach implements runtime.NodeCopiesDownstream.
func (d *Downstream) PublishEach(key channel.Key, _ uint64, objects map[string][]byte) {
	d.Objects[key] = objects
}

// Unpublish implements runtime.Downstream.
func (d *Downstream) Unpublish(key channel.Key) { delete(d.Objects, key) }

// Fixture is a controller of kind over fake clientsets.
type Fixture[T workload.Object] struct {
	t              *testing.T
	Kind           workload.Kind[T]
	Kube           *kubefake.Clientset
	Sedna          *sednafake.Clientset
	KubeInformers  kubeinformers.SharedInformerFactory
	TokenInformers kubeinformers.SharedInformerFactory
	SednaInformers sednainformers.SharedInformerFactory
	Downstream     *Downstream
	Models         *runtime.Bindings
	Recorder       *record.FakeRecorder
	C              *workload.Controller[T]
	kindInformer   cache.SharedIndexInformer
}

// Now is the fixture's clock.
var Now = metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))

// New builds the fixture with the given Sedna objects (the kind's and Models) in the fake API and
// the caches.
func New[T workload.Object](t *testing.T, kind workload.Kind[T], lcServer string, sednaObjects ...k8sruntime.Object) *Fixture[T] {
	t.Helper()
	f := &Fixture[T]{
		t: t, Kind: kind, Kube: kubefake.NewClientset(), Sedna: sednafake.NewSimpleClientset(sednaObjects...),
		Downstream: &Downstream{Objects: map[channel.Key]map[string][]byte{}}, Models: runtime.NewBindings(),
		Recorder: record.NewFakeRecorder(1000),
	}
	f.KubeInformers = kubeinformers.NewSharedInformerFactory(f.Kube, 0)
	f.TokenInformers = runtime.NewWorkerTokenInformers(f.Kube, "")
	f.SednaInformers = sednainformers.NewSharedInformerFactory(f.Sedna, 0)
	c, err := workload.New(kind, runtime.Dependencies{
		KubeClient: f.Kube, SednaClient: f.Sedna, KubeInformers: f.KubeInformers, SednaInformers: f.SednaInformers,
		WorkerTokenInformers: f.TokenInformers, Downstream: f.Downstream, Models: f.Models, Recorder: f.Recorder,
		LCServer: lcServer,
	})
	require.NoError(t, err)
	f.C = c
	t.Cleanup(c.ShutDown)
	c.SetClock(func() metav1.Time { return Now })
	f.kindInformer, _ = kind.Informer(f.SednaInformers)
	f.Refresh()
	return f
}

func (f *Fixture[T]) replace(informer cache.SharedIndexInformer, list k8sruntime.Object) {
	f.t.Helper()
	items, err := meta.ExtractList(list)
	require.NoError(f.t, err)
	objs := make([]any, 0, len(items))
	for _, item := range items {
		objs = append(objs, item)
	}
	require.NoError(f.t, informer.GetIndexer().Replace(objs, ""))
}

// Refresh replaces the informer caches with the fake APIs' current objects.
func (f *Fixture[T]) Refresh() {
	f.t.Helper()
	ctx := context.Background()
	d, err := f.Kube.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	f.replace(f.KubeInformers.Apps().V1().Deployments().Informer(), d)
	s, err := f.Kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	f.replace(f.KubeInformers.Core().V1().Services().Informer(), s)
	p, err := f.Kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	f.replace(f.KubeInformers.Core().V1().Pods().Informer(), p)
	sec, err := f.Kube.CoreV1().Secrets("").List(ctx, metav1.ListOptions{LabelSelector: runtime.WorkerTokenSelector.String()})
	require.NoError(f.t, err)
	f.replace(f.TokenInformers.Core().V1().Secrets().Informer(), sec)
	m, err := f.Sedna.SednaV1alpha1().Models("").List(ctx, metav1.ListOptions{})
	require.NoError(f.t, err)
	f.replace(f.SednaInformers.Sedna().V1alpha1().Models().Informer(), m)
	plural := strings.ToLower(f.Kind.KindName) + "s"
	gvr := schema.GroupVersionResource{Group: sednav1.SchemeGroupVersion.Group, Version: sednav1.SchemeGroupVersion.Version, Resource: plural}
	objs, err := f.Sedna.Tracker().List(gvr, sednav1.SchemeGroupVersion.WithKind(f.Kind.KindName), "")
	require.NoError(f.t, err)
	f.replace(f.kindInformer, objs)
}

// Sync runs one sync of key, requires it to succeed and refreshes the caches.
func (f *Fixture[T]) Sync(key string) {
	f.t.Helper()
	f.Kube.ClearActions()
	require.NoError(f.t, f.C.Sync(context.Background(), key))
	f.Refresh()
}

// Writes are the create/update/delete actions on the kube API since the last Sync began, except
// on worker-token Secrets: "create pods x".
func (f *Fixture[T]) Writes() []string {
	var out []string
	for _, a := range f.Kube.Actions() {
		if a.GetResource().Resource == "secrets" {
			continue
		}
		switch a.GetVerb() {
		case "create", "update", "delete":
			name := ""
			switch action := a.(type) {
			case k8stesting.CreateAction:
				name = action.GetObject().(metav1.Object).GetName()
			case k8stesting.DeleteAction:
				name = action.GetName()
			}
			out = append(out, a.GetVerb()+" "+a.GetResource().Resource+" "+name)
		}
	}
	return out
}

// Get reads the kind's object from the fake API.
func (f *Fixture[T]) Get(namespace, name string) T {
	f.t.Helper()
	plural := strings.ToLower(f.Kind.KindName) + "s"
	gvr := schema.GroupVersionResource{Group: sednav1.SchemeGroupVersion.Group, Version: sednav1.SchemeGroupVersion.Version, Resource: plural}
	obj, err := f.Sedna.Tracker().Get(gvr, namespace, name)
	require.NoError(f.t, err)
	return obj.(T)
}

// Pod reads a pod from the fake API.
func (f *Fixture[T]) Pod(namespace, name string) *corev1.Pod {
	f.t.Helper()
	p, err := f.Kube.CoreV1().Pods(namespace).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(f.t, err)
	return p
}

// SetPodStatus writes a pod's status in the fake API and refreshes the caches.
func (f *Fixture[T]) SetPodStatus(namespace, name string, status corev1.PodStatus) {
	f.t.Helper()
	p := f.Pod(namespace, name)
	p.Status = status
	_, err := f.Kube.CoreV1().Pods(namespace).UpdateStatus(context.Background(), p, metav1.UpdateOptions{})
	require.NoError(f.t, err)
	f.Refresh()
}

// Env is a container's env as "NAME=value" ("NAME=<field>" / "NAME=<secret key>" for references).
func Env(c corev1.Container) []string {
	var out []string
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out = append(out, e.Name+"="+e.Value)
		case e.ValueFrom.FieldRef != nil:
			out = append(out, e.Name+"=<"+e.ValueFrom.FieldRef.FieldPath+">")
		case e.ValueFrom.SecretKeyRef != nil:
			out = append(out, e.Name+"=<secret "+e.ValueFrom.SecretKeyRef.Name+"/"+e.ValueFrom.SecretKeyRef.Key+">")
		}
	}
	return out
}

// HostModel is a Model at a host path.
func HostModel(namespace, name, url string) *sednav1.Model {
	return &sednav1.Model{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Spec: sednav1.ModelSpec{URL: url, Format: "pth"}}
}
