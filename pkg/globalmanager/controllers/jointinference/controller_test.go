package jointinference

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

func TestEdgeReportsBecomeMetricsAndTheServiceGoesToItsEdgeNode(t *testing.T) {
	ji := helmet()
	f := newFixture(t, "", []k8sruntime.Object{ji, hostModel("big", "/m/big.pb"), hostModel("little", "/m/little.pb")})
	c := f.c
	key := runtime.Key(Kind, "ns", "helmet")

	f.syncAndRefresh("ns/helmet")
	f.workerPod("helmet-deployment-edge", "helmet-deployment-edge-7f-a", "edge-1", "10.0.0.11", "30")
	f.refresh()
	require.NoError(t, c.HandleReport(context.Background(), "edge-1", key, []byte(
		`{"phase":"inference","status":"","worker":"helmet-deployment-edge-7f-a","output":{"models":null,"ownerInfo":{"inferenceNumber":12,"hardExampleNumber":3,"uploadCloudRatio":0.25,"startTime":"x","updateTime":"y","note":"ok"}}}`)))
	require.NoError(t, c.sync(context.Background(), "ns/helmet"))
	require.Equal(t, []string{"edge-1"}, f.downstream.nodes[key])
	require.Equal(t, []string{"edge-1"}, f.models.Nodes(runtime.Key("model", "ns", "little")), "the edge model goes to the edge node")
	got := f.service("helmet")
	require.Equal(t, []sednav1.Metric{
		{Key: "hardExampleNumber", Value: "3"}, {Key: "inferenceNumber", Value: "12"},
		{Key: "note", Value: "ok"}, {Key: "uploadCloudRatio", Value: "0.25"},
	}, got.Status.Metrics, "times dropped, strings kept, numbers as JSON, sorted")
	require.NotNil(t, got.Status.StartTime)

	require.ErrorContains(t, c.HandleReport(context.Background(), "edge-1", key, []byte(`{"phase":1}`)), "decoding the joint inference report")
	require.ErrorContains(t, c.HandleReport(context.Background(), "edge-1", key, []byte(`{"phase":"x","extra":true}`)), "unknown field")

	require.NoError(t, f.sednaInformers.Sedna().V1alpha1().JointInferenceServices().Informer().GetIndexer().Delete(ji))
	require.NoError(t, c.sync(context.Background(), "ns/helmet"))
	require.NotContains(t, f.downstream.nodes, key)
	require.Empty(t, f.models.Nodes(runtime.Key("model", "ns", "little")))
}

func TestChildEventsEnqueueTheirControllingService(t *testing.T) {
	ji := helmet()
	f := newFixture(t, "", []k8sruntime.Object{ji})
	owned := func(uid string, kind string) *appsv1.Deployment {
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d", Namespace: "ns", OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "sedna.io/v1alpha1", Kind: kind, Name: "helmet", UID: types.UID("uid-" + uid), Controller: new(true),
		}}}}
	}
	tests := map[string]struct {
		child    metav1.Object
		enqueued bool
	}{
		"controlled by the service":              {child: owned("1", KindName), enqueued: true},
		"left by an older service with the name": {child: owned("0", KindName)},
		"controlled by another kind":             {child: owned("1", "IncrementalLearningJob")},
		"no owner":                               {child: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for f.c.queue.Len() > 0 {
				key, _ := f.c.queue.Get()
				f.c.queue.Done(key)
			}
			f.c.enqueueOwner(tc.child)
			if tc.enqueued {
				require.Equal(t, 1, f.c.queue.Len())
				key, _ := f.c.queue.Get()
				require.Equal(t, "ns/helmet", key)
				f.c.queue.Done(key)
			} else {
				require.Zero(t, f.c.queue.Len())
			}
		})
	}

	f.c.enqueueModelUsers(hostModel("little", "/x"))
	require.Equal(t, 1, f.c.queue.Len(), "a change of its edge model enqueues the service")
	key, _ := f.c.queue.Get()
	f.c.queue.Done(key)
	f.c.enqueueModelUsers(hostModel("unrelated", "/x"))
	require.Zero(t, f.c.queue.Len())
}
