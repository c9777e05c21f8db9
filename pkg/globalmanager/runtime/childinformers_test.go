package runtime

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

func TestChildInformersCacheOnlyTheOwnerKindsChildren(t *testing.T) {
	deployment := func(name string, labels map[string]string) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: labels}}
	}
	client := kubefake.NewClientset(
		deployment("ours", map[string]string{"jointinferenceservice.sedna.io/uid": "u1", "jointinferenceservice.sedna.io/name": "ji"}),
		deployment("another-kinds", map[string]string{"incrementallearningjob.sedna.io/uid": "u2"}),
		deployment("someone-elses", map[string]string{"app": "web"}),
	)
	children := NewChildInformers(client, "", 0)
	factory := children.For("JointInferenceService")
	require.Same(t, factory, children.For("jointinferenceservice"), "one factory per kind")
	lister := factory.Apps().V1().Deployments().Lister()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	children.Start(ctx.Done())
	require.NoError(t, children.WaitForCacheSync(ctx.Done()))
	cached, err := lister.List(labels.Everything())
	require.NoError(t, err)
	require.Len(t, cached, 1)
	require.Equal(t, "ours", cached[0].Name)
}

func TestControlledLiveReadsTheOwner(t *testing.T) {
	owner := &metav1.ObjectMeta{Name: "ji", UID: "u1"}
	controller := true
	owned := &metav1.ObjectMeta{Name: "child", OwnerReferences: []metav1.OwnerReference{{UID: "u1", Controller: &controller}}}
	get := func(obj metav1.Object, err error) func(context.Context) (metav1.Object, error) {
		return func(context.Context) (metav1.Object, error) { return obj, err }
	}
	ok, err := ControlledLive(context.Background(), owner, get(owned, nil))
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = ControlledLive(context.Background(), owner, get(&metav1.ObjectMeta{Name: "child"}, nil))
	require.NoError(t, err)
	require.False(t, ok, "an object without a controller reference is not the owner's")
	_, err = ControlledLive(context.Background(), owner, get(nil, errors.New("boom")))
	require.ErrorContains(t, err, "boom")
}
