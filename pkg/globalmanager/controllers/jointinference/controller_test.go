package jointinference

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	sednafake "github.com/sedna-go/sedna/pkg/client/clientset/versioned/fake"
	sednainformers "github.com/sedna-go/sedna/pkg/client/informers/externalversions"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

type recordingDownstream struct{ nodes map[channel.Key][]string }

func (r *recordingDownstream) Publish(key channel.Key, _ uint64, _ []byte, nodes ...string) {
	r.nodes[key] = nodes
}
func (r *recordingDownstream) Unpublish(key channel.Key) { delete(r.nodes, key) }

func TestEdgeReportsBecomeMetricsAndTheServiceGoesToItsEdgeNode(t *testing.T) {
	ji := &sednav1.JointInferenceService{
		ObjectMeta: metav1.ObjectMeta{Name: "helmet", Namespace: "ns", ResourceVersion: "5"},
		Spec: sednav1.JointInferenceServiceSpec{
			EdgeWorker: sednav1.EdgeWorker{Model: sednav1.ModelReference{Name: "little"},
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeName: "edge-1"}}},
			CloudWorker: sednav1.CloudWorker{Model: sednav1.ModelReference{Name: "big"}},
		},
	}
	client := sednafake.NewSimpleClientset(ji)
	informers := sednainformers.NewSharedInformerFactory(client, 0)
	indexer := informers.Sedna().V1alpha1().JointInferenceServices().Informer().GetIndexer()
	require.NoError(t, indexer.Add(ji))
	downstream := &recordingDownstream{nodes: map[channel.Key][]string{}}
	models := runtime.NewBindings()
	ctrl, err := New(runtime.Dependencies{SednaClient: client, SednaInformers: informers, Downstream: downstream, Models: models})
	require.NoError(t, err)
	c := ctrl.(*Controller)
	key := runtime.Key(Kind, "ns", "helmet")

	require.NoError(t, c.HandleReport(context.Background(), "edge-1", key, []byte(
		`{"phase":"inference","status":"","output":{"models":null,"ownerInfo":{"inferenceNumber":12,"hardExampleNumber":3,"uploadCloudRatio":0.25,"startTime":"x","updateTime":"y","note":"ok"}}}`)))
	require.NoError(t, c.sync(context.Background(), "ns/helmet"))
	require.Equal(t, []string{"edge-1"}, downstream.nodes[key])
	require.Equal(t, []string{"edge-1"}, models.Nodes(runtime.Key("model", "ns", "little")), "the edge model goes to the edge node")
	got, err := client.SednaV1alpha1().JointInferenceServices("ns").Get(context.Background(), "helmet", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, []sednav1.Metric{
		{Key: "hardExampleNumber", Value: "3"}, {Key: "inferenceNumber", Value: "12"},
		{Key: "note", Value: "ok"}, {Key: "uploadCloudRatio", Value: "0.25"},
	}, got.Status.Metrics, "times dropped, strings kept, numbers as JSON, sorted")
	require.NotNil(t, got.Status.StartTime)

	require.ErrorContains(t, c.HandleReport(context.Background(), "edge-1", key, []byte(`{"phase":1}`)), "decoding the joint inference report")
	require.ErrorContains(t, c.HandleReport(context.Background(), "edge-1", key, []byte(`{"phase":"x","extra":true}`)), "unknown field")

	require.NoError(t, indexer.Delete(ji))
	require.NoError(t, c.sync(context.Background(), "ns/helmet"))
	require.NotContains(t, downstream.nodes, key)
	require.Empty(t, models.Nodes(runtime.Key("model", "ns", "little")))
}
