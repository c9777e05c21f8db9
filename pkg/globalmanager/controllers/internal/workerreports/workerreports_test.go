package workerreports

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
)

// Every report GM records is logged at V(4) with what was kept (the fault campaign counts
// reports by the IDs in them); a report it ignores is not logged as recorded.
func TestRecordLogsEveryReportItKeeps(t *testing.T) {
	ctx, logs, pods := recordingSetup(t)
	obj := Object{Key: "ns/ji", UID: "u1", Event: &corev1.Pod{}, Selector: map[string]string{"owner": "ji"}}
	store := NewStore()
	report := func(worker, id string) Report {
		r, err := Decode([]byte(`{"phase":"inference","status":"completed","output":{"models":[],"ownerInfo":{"reportId":"`+id+`"}},"worker":"`+worker+`"}`), "test")
		require.NoError(t, err)
		return r
	}

	require.True(t, store.Record(ctx, pods, record.NewFakeRecorder(1), obj, "node-a", report("edge-0", "id-1")))
	require.False(t, store.Record(ctx, pods, record.NewFakeRecorder(1), obj, "node-b", report("edge-0", "id-2")), "another node's LC")
	require.False(t, store.Record(ctx, pods, record.NewFakeRecorder(1), obj, "node-a", report("stranger", "id-3")), "not a pod of the object")

	logged := logs()
	require.Equal(t, 1, strings.Count(logged, "Recorded a worker report"), logged)
	require.Contains(t, logged, `values={"reportId":"id-1"}`)
	require.NotContains(t, logged, "id-2")
	require.NotContains(t, logged, "id-3")
}

// A worker's phase and status reach GM's log clipped to 64 bytes: GM only logs them.
func TestRecordClipsWhatOnlyTheLogCarries(t *testing.T) {
	ctx, logs, pods := recordingSetup(t)
	long := strings.Repeat("p", 10000)
	r, err := Decode([]byte(`{"phase":"`+long+`","status":"`+long+`","output":{"ownerInfo":{"reportId":"x"}},"worker":"edge-0"}`), "test")
	require.NoError(t, err)
	obj := Object{Key: "ns/ji", UID: "u1", Event: &corev1.Pod{}, Selector: map[string]string{"owner": "ji"}}
	require.True(t, NewStore().Record(ctx, pods, record.NewFakeRecorder(1), obj, "node-a", r))
	require.Contains(t, logs(), `phase="`+strings.Repeat("p", 64)+`…"`)
	require.NotContains(t, logs(), strings.Repeat("p", 65))
}

// recordingSetup is a context logging at V(4) into a buffer (logs reads it) and a pod lister
// holding edge-0, a worker of the object labelled owner=ji, on node-a.
func recordingSetup(t *testing.T) (context.Context, func() string, corelisters.PodLister) {
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.Verbosity(4), ktesting.BufferLogs(true)))
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	require.NoError(t, indexer.Add(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "edge-0", Labels: map[string]string{"owner": "ji"}},
		Spec:       corev1.PodSpec{NodeName: "node-a"},
	}))
	logs := func() string { return logger.GetSink().(ktesting.Underlier).GetBuffer().String() }
	return klog.NewContext(t.Context(), logger), logs, corelisters.NewPodLister(indexer)
}
