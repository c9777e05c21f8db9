package managers

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/gmclient"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// outboxReporter queues into a real store the way the LC's reporter does.
type outboxReporter struct{ st *store.Store }

var _ OutboxReporter = outboxReporter{}

func (r outboxReporter) Report(ctx context.Context, key channel.Key, content []byte) error {
	return r.ReportAs(ctx, key, content, store.EnqueueOptions{})
}

func (r outboxReporter) ReportAs(_ context.Context, key channel.Key, content []byte, opts store.EnqueueOptions) error {
	_, err := gmclient.EnqueueReportAs(r.st, key, content, opts)
	return err
}

// queued is one outbox entry as GM will receive it.
type queued struct {
	seq     uint64
	class   store.Class
	key     channel.Key
	content map[string]any
}

func queuedReports(t *testing.T, st *store.Store) []queued {
	t.Helper()
	entries, err := st.Pending(0, 0)
	require.NoError(t, err)
	var out []queued
	for _, e := range entries {
		r, err := gmclient.DecodeReport(e.Payload)
		require.NoError(t, err)
		var content map[string]any
		require.NoError(t, json.Unmarshal(r.Content, &content))
		out = append(out, queued{seq: e.Seq, class: e.Class, key: r.Key, content: content})
	}
	return out
}

func jiMessage(worker string, inferences int, pad int) WorkerMessage {
	return WorkerMessage{
		Name: worker, Namespace: "ns", OwnerName: "ji", OwnerKind: KindJointInferenceService, Kind: "inference",
		OwnerInfo: map[string]any{"inferenceNumber": inferences, "pad": strings.Repeat("x", pad)},
	}
}

func inferenceNumber(q queued) int {
	return int(q.content["output"].(map[string]any)["ownerInfo"].(map[string]any)["inferenceNumber"].(float64))
}

func TestForwardedReportClasses(t *testing.T) {
	key := channel.Key{Kind: KindJointInferenceService, Namespace: "ns", Name: "ji"}
	base := jiMessage("edge-0", 1, 0)
	otherWorker := base
	otherWorker.Name = "edge-1"
	otherPhase := base
	otherPhase.Kind = "train"
	running := base
	running.Status = "Running"

	latest := forwardOptions(key, base)
	require.Equal(t, store.ClassWorkerMetrics, latest.Class)
	require.Equal(t, latest, forwardOptions(key, base), "the stream is stable")
	require.Equal(t, latest, forwardOptions(key, running), "running is the latest state too")
	require.NotEqual(t, latest.Stream, forwardOptions(key, otherWorker).Stream)
	require.NotEqual(t, latest.Stream, forwardOptions(key, otherPhase).Stream)
	require.NotEqual(t, latest.Stream, forwardOptions(channel.Key{Kind: key.Kind, Namespace: "ns", Name: "other"}, base).Stream)
	for _, status := range []string{"completed", "failed", "ready", "Completed"} {
		msg := base
		msg.Status = status
		require.Equal(t, store.EnqueueOptions{Class: store.ClassWorkerEvent}, forwardOptions(key, msg), status)
	}
}

// A worker floods the LC with large metrics reports from many names, and with events: the outbox
// never passes its byte budget, the file stays near it, the LC's own stage reports still get
// in, each worker's queued metrics are its newest, the events that got in keep their order, and
// the reports after a refusal carry the count of dropped reports.
func TestWorkerFloodThroughTheForwarder(t *testing.T) {
	const budget = 2 << 20
	st, err := store.Open(filepath.Join(t.TempDir(), "lc.db"), store.Options{MaxOutboxBytes: budget})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	reporter := outboxReporter{st: st}
	ji, err := NewForwarder(KindJointInferenceService, reporter)
	require.NoError(t, err)
	fl, err := NewForwarder(KindFederatedLearningJob, reporter)
	require.NoError(t, err)
	ctx := t.Context()

	const workers = 24
	refused := 0
	var acceptedEvents []int
	for round := range 8 {
		for w := range workers {
			err := ji.HandleWorkerMessage(ctx, jiMessage(fmt.Sprintf("edge-%d", w), round*100+w, 40<<10))
			if err != nil {
				require.ErrorIs(t, err, store.ErrOutboxFull)
				require.NotErrorIs(t, err, ErrInvalidMessage)
				refused++
			}
		}
		event := WorkerMessage{Name: "fl-0", Namespace: "ns", OwnerName: "fl", OwnerKind: KindFederatedLearningJob, Kind: "train",
			Status: "completed", OwnerInfo: map[string]any{"round": round, "pad": strings.Repeat("y", 150<<10)}}
		if err := fl.HandleWorkerMessage(ctx, event); err == nil {
			acceptedEvents = append(acceptedEvents, round)
		} else {
			require.ErrorIs(t, err, store.ErrOutboxFull)
		}
		stats, err := st.OutboxStats()
		require.NoError(t, err)
		require.LessOrEqual(t, stats.Bytes(), uint64(budget))
	}
	require.Positive(t, refused, "the flood never filled the metrics share")
	require.NotEmpty(t, acceptedEvents)
	require.Less(t, len(acceptedEvents), 8, "the flood never filled the worker share")

	// Stage reports of the LC's own still get in.
	stageKey := channel.Key{Kind: "incrementallearningjob", Namespace: "ns", Name: "il"}
	for i := range 20 {
		require.NoError(t, reporter.Report(ctx, stageKey, fmt.Appendf(nil, `{"phase":"train","status":"ready","round":%d}`, i)))
	}

	info, err := os.Stat(st.Path())
	require.NoError(t, err)
	stats, err := st.OutboxStats()
	require.NoError(t, err)
	t.Logf("accounted %d bytes of a %d-byte budget, file %d bytes; %d metrics reports refused, %d coalesced",
		stats.Bytes(), budget, info.Size(), refused, stats.Coalesced)
	require.LessOrEqual(t, info.Size(), int64(2*budget))
	require.Positive(t, stats.Coalesced)

	perWorker := map[string][]int{}
	var events, stages []int
	for _, q := range queuedReports(t, st) {
		switch q.class {
		case store.ClassWorkerMetrics:
			n := inferenceNumber(q)
			perWorker[fmt.Sprintf("edge-%d", n%100)] = append(perWorker[fmt.Sprintf("edge-%d", n%100)], n)
		case store.ClassWorkerEvent:
			events = append(events, int(q.content["output"].(map[string]any)["ownerInfo"].(map[string]any)["round"].(float64)))
		case store.ClassOwn:
			stages = append(stages, int(q.content["round"].(float64)))
		}
	}
	require.Equal(t, acceptedEvents, events)
	require.Len(t, stages, 20)
	for worker, ns := range perWorker {
		require.Len(t, ns, 1, "worker %s has %v queued", worker, ns)
	}
	// The workers that got in first were updated every round: their newest state is queued.
	require.Equal(t, []int{700}, perWorker["edge-0"])

	// The next report about the owner that gets in says how many were dropped.
	require.NoError(t, ji.HandleWorkerMessage(ctx, jiMessage("edge-0", 1000, 10)))
	reports := queuedReports(t, st)
	last := reports[len(reports)-1]
	require.Equal(t, 1000, inferenceNumber(last))
	require.Equal(t, float64(refused), last.content["dropped"])

	// A deleted owner starts afresh.
	ji.ResourceDeleted(ctx, store.ResourceKey{Kind: KindJointInferenceService, Namespace: "ns", Name: "ji"})
	require.NoError(t, ji.HandleWorkerMessage(ctx, jiMessage("edge-0", 1001, 10)))
	reports = queuedReports(t, st)
	require.NotContains(t, reports[len(reports)-1].content, "dropped")
}
