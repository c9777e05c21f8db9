package dataset

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	sednafake "github.com/sedna-go/sedna/pkg/client/clientset/versioned/fake"
	sednainformers "github.com/sedna-go/sedna/pkg/client/informers/externalversions"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

// fakeDownstream records what controllers publish.
type fakeDownstream struct {
	published map[channel.Key]published
}

type published struct {
	version uint64
	object  []byte
	nodes   []string
}

func (f *fakeDownstream) Publish(key channel.Key, version uint64, object []byte, nodes ...string) {
	f.published[key] = published{version: version, object: object, nodes: nodes}
}

func (f *fakeDownstream) Unpublish(key channel.Key) { delete(f.published, key) }

type fixture struct {
	t          *testing.T
	client     *sednafake.Clientset
	downstream *fakeDownstream
	secrets    *runtime.Bindings
	recorder   *record.FakeRecorder
	indexer    cache.Indexer
	controller *Controller
}

func newFixture(t *testing.T, datasets ...*sednav1.Dataset) *fixture {
	t.Helper()
	f := &fixture{t: t, downstream: &fakeDownstream{published: map[channel.Key]published{}},
		secrets: runtime.NewBindings(), recorder: record.NewFakeRecorder(10)}
	f.client = sednafake.NewSimpleClientset()
	informers := sednainformers.NewSharedInformerFactory(f.client, 0)
	f.indexer = informers.Sedna().V1alpha1().Datasets().Informer().GetIndexer()
	for _, ds := range datasets {
		_, err := f.client.SednaV1alpha1().Datasets(ds.Namespace).Create(context.Background(), ds, metav1.CreateOptions{})
		require.NoError(t, err)
		require.NoError(t, f.indexer.Add(ds))
	}
	ctrl, err := New(runtime.Dependencies{
		SednaClient: f.client, SednaInformers: informers, Downstream: f.downstream,
		Secrets: f.secrets, Recorder: f.recorder,
	})
	require.NoError(t, err)
	f.controller = ctrl.(*Controller)
	f.controller.now = func() time.Time { return time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC) }
	return f
}

func (f *fixture) sync(key string) {
	f.t.Helper()
	require.NoError(f.t, f.controller.sync(context.Background(), key))
}

func (f *fixture) get(name string) *sednav1.Dataset {
	f.t.Helper()
	ds, err := f.client.SednaV1alpha1().Datasets("default").Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(f.t, err)
	return ds
}

func newDataset(name, node, secret string) *sednav1.Dataset {
	return &sednav1.Dataset{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", ResourceVersion: "7", Generation: 2,
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec: sednav1.DatasetSpec{URL: "/data/train.txt", Format: "txt", NodeName: node, CredentialName: secret},
	}
}

func TestSyncPublishesToTheDatasetsNodeWithItsSecret(t *testing.T) {
	f := newFixture(t, newDataset("ds", "edge-1", "s3-creds"))
	f.sync("default/ds")

	p, ok := f.downstream.published[runtime.Key(Kind, "default", "ds")]
	require.True(t, ok)
	require.Equal(t, []string{"edge-1"}, p.nodes)
	require.Equal(t, uint64(7), p.version)
	var sent map[string]any
	require.NoError(t, json.Unmarshal(p.object, &sent))
	require.Equal(t, "Dataset", sent["kind"])
	require.Equal(t, "sedna.io/v1alpha1", sent["apiVersion"])
	require.NotContains(t, sent["metadata"], "managedFields")
	require.Equal(t, []string{"edge-1"}, f.secrets.Nodes(runtime.Key(runtime.SecretKind, "default", "s3-creds")))

	ds := f.get("ds")
	ready := meta.FindStatusCondition(ds.Status.Conditions, sednav1.ConditionReady)
	require.NotNil(t, ready)
	require.Equal(t, metav1.ConditionUnknown, ready.Status)
	require.Equal(t, ReasonWaitingForNode, ready.Reason)
	require.Equal(t, int64(2), ds.Status.ObservedGeneration)
}

func TestReportsBecomeStatus(t *testing.T) {
	f := newFixture(t, newDataset("ds", "edge-1", ""))
	key := runtime.Key(Kind, "default", "ds")
	cases := []struct {
		name        string
		node        string
		content     string
		wantSamples int
		wantStatus  metav1.ConditionStatus
		wantReason  string
	}{
		{name: "first count", node: "edge-1", content: `{"numberOfSamples":120}`, wantSamples: 120, wantStatus: metav1.ConditionTrue, wantReason: ReasonCounted},
		{name: "growth", node: "edge-1", content: `{"numberOfSamples":180}`, wantSamples: 180, wantStatus: metav1.ConditionTrue, wantReason: ReasonCounted},
		{name: "unreadable index", node: "edge-1", content: `{"numberOfSamples":180,"condition":{"reason":"IndexNotFound","message":"no /data/train.txt"}}`,
			wantSamples: 180, wantStatus: metav1.ConditionFalse, wantReason: "IndexNotFound"},
		{name: "report from a node the dataset left", node: "edge-9", content: `{"numberOfSamples":5}`,
			wantSamples: 180, wantStatus: metav1.ConditionUnknown, wantReason: ReasonWaitingForNode},
	}
	for _, tc := range cases {
		require.NoError(t, f.controller.HandleReport(context.Background(), tc.node, key, []byte(tc.content)), tc.name)
		require.Equal(t, 1, f.controller.queue.Len(), tc.name)
		queued, _ := f.controller.queue.Get()
		f.controller.queue.Done(queued)
		require.NoError(t, f.indexer.Update(f.get("ds")), "the informer sees the status written")
		f.sync(queued)
		ds := f.get("ds")
		require.Equal(t, tc.wantSamples, ds.Status.NumberOfSamples, tc.name)
		ready := meta.FindStatusCondition(ds.Status.Conditions, sednav1.ConditionReady)
		require.Equal(t, tc.wantStatus, ready.Status, tc.name)
		require.Equal(t, tc.wantReason, ready.Reason, tc.name)
	}
	require.NotNil(t, f.get("ds").Status.UpdateTime)
	// Counted, IndexNotFound, WaitingForNode: growth alone keeps the reason and raises no event.
	require.Len(t, f.recorder.Events, 3, "an event per reason change")
}

func TestInvalidReportsAreRejected(t *testing.T) {
	f := newFixture(t)
	key := runtime.Key(Kind, "default", "ds")
	cases := map[string]struct{ content, want string }{
		"not json":       {`nope`, "decoding the dataset report"},
		"unknown field":  {`{"numberOfSamples":1,"evil":true}`, `unknown field "evil"`},
		"missing count":  {`{}`, "no numberOfSamples"},
		"negative count": {`{"numberOfSamples":-3}`, "is negative"},
		"float count":    {`{"numberOfSamples":1.5}`, "decoding the dataset report"},
		"bad reason":     {`{"numberOfSamples":1,"condition":{"reason":"not camel","message":"x"}}`, "is not a CamelCase word"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := f.controller.HandleReport(context.Background(), "edge-1", key, []byte(tc.content))
			require.ErrorContains(t, err, tc.want)
			require.Zero(t, f.controller.queue.Len())
		})
	}
}

func TestDeletedDatasetIsUnpublished(t *testing.T) {
	f := newFixture(t, newDataset("ds", "edge-1", "creds"))
	f.sync("default/ds")
	require.NoError(t, f.indexer.Delete(f.get("ds")))
	f.sync("default/ds")
	require.Empty(t, f.downstream.published)
	require.Empty(t, f.secrets.Nodes(runtime.Key(runtime.SecretKind, "default", "creds")))
}
