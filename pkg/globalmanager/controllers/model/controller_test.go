package model

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	sednafake "github.com/sedna-go/sedna/pkg/client/clientset/versioned/fake"
	sednainformers "github.com/sedna-go/sedna/pkg/client/informers/externalversions"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

type recordingDownstream struct {
	nodes map[channel.Key][]string
}

func (r *recordingDownstream) Publish(key channel.Key, _ uint64, _ []byte, nodes ...string) {
	r.nodes[key] = nodes
}
func (r *recordingDownstream) Unpublish(key channel.Key) { delete(r.nodes, key) }

func TestModelFollowsTheNodesThatUseIt(t *testing.T) {
	m := &sednav1.Model{
		ObjectMeta: metav1.ObjectMeta{Name: "little", Namespace: "ns", ResourceVersion: "3"},
		Spec:       sednav1.ModelSpec{URL: "s3://models/little.pb", Format: "pb", CredentialName: "s3"},
	}
	client := sednafake.NewSimpleClientset(m)
	informers := sednainformers.NewSharedInformerFactory(client, 0)
	require.NoError(t, informers.Sedna().V1alpha1().Models().Informer().GetIndexer().Add(m))
	downstream := &recordingDownstream{nodes: map[channel.Key][]string{}}
	models, secrets := runtime.NewBindings(), runtime.NewBindings()
	ctrl, err := New(runtime.Dependencies{SednaClient: client, SednaInformers: informers, Downstream: downstream,
		Models: models, Secrets: secrets})
	require.NoError(t, err)
	c := ctrl.(*Controller)
	modelKey := runtime.Key(Kind, "ns", "little")
	secretKey := runtime.Key(runtime.SecretKind, "ns", "s3")

	// Nobody uses it yet: published to no node.
	require.NoError(t, c.sync(context.Background(), "ns/little"))
	require.Empty(t, downstream.nodes[modelKey])

	// A service on edge-1 and a job on edge-2 use it: a binding change enqueues the model.
	models.Set(runtime.Key("jointinferenceservice", "ns", "ji"), []channel.Key{modelKey}, []string{"edge-1"})
	models.Set(runtime.Key("incrementallearningjob", "ns", "il"), []channel.Key{modelKey}, []string{"edge-2"})
	require.Equal(t, 1, c.queue.Len(), "binding changes coalesce into one key")
	require.NoError(t, c.sync(context.Background(), "ns/little"))
	require.Equal(t, []string{"edge-1", "edge-2"}, downstream.nodes[modelKey])
	require.Equal(t, []string{"edge-1", "edge-2"}, secrets.Nodes(secretKey), "the model's secret goes where the model goes")

	// Metrics reported for the model reach status.
	require.NoError(t, c.HandleReport(context.Background(), "edge-1", modelKey, []byte(`{"metrics":[{"key":"precision","value":"0.91"}]}`)))
	require.NoError(t, c.sync(context.Background(), "ns/little"))
	got, err := client.SednaV1alpha1().Models("ns").Get(context.Background(), "little", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, []sednav1.Metric{{Key: "precision", Value: "0.91"}}, got.Status.Metrics)
	require.NotNil(t, got.Status.UpdateTime)

	require.ErrorContains(t, c.HandleReport(context.Background(), "edge-1", modelKey, []byte(`{"metrics":[{"value":"1"}]}`)), "a metric has no key")
	require.ErrorContains(t, c.HandleReport(context.Background(), "edge-1", modelKey, []byte(`{"accuracy":1}`)), "unknown field")

	// Deleted: unpublished everywhere, its secret released.
	require.NoError(t, informers.Sedna().V1alpha1().Models().Informer().GetIndexer().Delete(m))
	require.NoError(t, c.sync(context.Background(), "ns/little"))
	_, published := downstream.nodes[modelKey]
	require.False(t, published)
	require.Empty(t, secrets.Nodes(secretKey))
}

func TestARecreatedModelDoesNotInheritItsPredecessorsMetrics(t *testing.T) {
	old := &sednav1.Model{
		ObjectMeta: metav1.ObjectMeta{Name: "little", Namespace: "ns", UID: "uid-old", ResourceVersion: "3"},
		Spec:       sednav1.ModelSpec{URL: "/models/little.pb", Format: "pb"},
	}
	client := sednafake.NewSimpleClientset(old)
	informers := sednainformers.NewSharedInformerFactory(client, 0)
	indexer := informers.Sedna().V1alpha1().Models().Informer().GetIndexer()
	require.NoError(t, indexer.Add(old))
	ctrl, err := New(runtime.Dependencies{SednaClient: client, SednaInformers: informers,
		Downstream: &recordingDownstream{nodes: map[channel.Key][]string{}}, Models: runtime.NewBindings(), Secrets: runtime.NewBindings()})
	require.NoError(t, err)
	c := ctrl.(*Controller)
	ctx := context.Background()
	modelKey := runtime.Key(Kind, "ns", "little")
	require.NoError(t, c.HandleReport(ctx, "edge-1", modelKey, []byte(`{"metrics":[{"key":"precision","value":"0.91"}]}`)))

	// Deleted and created again under the same name before the controller synced it: the new
	// Model's first sync must not write the old one's metrics.
	require.NoError(t, indexer.Delete(old))
	require.NoError(t, client.SednaV1alpha1().Models("ns").Delete(ctx, "little", metav1.DeleteOptions{}))
	recreated := old.DeepCopy()
	recreated.UID, recreated.ResourceVersion = "uid-new", "9"
	_, err = client.SednaV1alpha1().Models("ns").Create(ctx, recreated, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NoError(t, indexer.Add(recreated))
	require.NoError(t, c.sync(ctx, "ns/little"))
	got, err := client.SednaV1alpha1().Models("ns").Get(ctx, "little", metav1.GetOptions{})
	require.NoError(t, err)
	require.Empty(t, got.Status.Metrics, "metrics reported for the deleted model")

	// A report for the new Model shows; deleting it forgets the report.
	require.NoError(t, c.HandleReport(ctx, "edge-1", modelKey, []byte(`{"metrics":[{"key":"precision","value":"0.5"}]}`)))
	require.NoError(t, c.sync(ctx, "ns/little"))
	got, err = client.SednaV1alpha1().Models("ns").Get(ctx, "little", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, []sednav1.Metric{{Key: "precision", Value: "0.5"}}, got.Status.Metrics)
	require.NoError(t, indexer.Delete(recreated))
	require.NoError(t, c.sync(ctx, "ns/little"))
	c.reportsMu.Lock()
	require.Empty(t, c.reports, "the report map is pruned when the model is gone")
	c.reportsMu.Unlock()

	// A report about a model GM does not know is refused rather than kept.
	require.ErrorContains(t, c.HandleReport(ctx, "edge-1", runtime.Key(Kind, "ns", "ghost"), []byte(`{"metrics":[]}`)), "not known to GM")
}
