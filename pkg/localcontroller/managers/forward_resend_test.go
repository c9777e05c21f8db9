package managers

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

func flMessage(job, worker, status string, round int) WorkerMessage {
	return WorkerMessage{
		Name: worker, Namespace: "ns", OwnerName: job, OwnerKind: KindFederatedLearningJob, Kind: "train", Status: status,
		OwnerInfo: map[string]any{"currentRound": round}, PublishedWorker: true,
	}
}

// flForwarder is the federated learning Forwarder queueing through reporter.
func flForwarder(t *testing.T, reporter Reporter) *Forwarder {
	t.Helper()
	fl, err := NewForwarder(KindFederatedLearningJob, reporter)
	require.NoError(t, err)
	return fl
}

// holdJob tells the forwarder that GM bound the job, with uid, to the node.
func holdJob(t *testing.T, f *Forwarder, job, uid string) {
	t.Helper()
	f.ResourceChanged(t.Context(), store.Resource{Key: store.ResourceKey{Kind: KindFederatedLearningJob, Namespace: "ns", Name: job},
		Version: 1, Object: []byte(`{"metadata":{"name":"` + job + `","namespace":"ns","uid":"` + uid + `"}}`)})
}

func queuedRounds(t *testing.T, st *store.Store) []string {
	t.Helper()
	var got []string
	for _, q := range queuedReports(t, st) {
		got = append(got, flRound(q))
	}
	return got
}

// flRound is the round of a queued federated learning report, with its owner and worker.
func flRound(q queued) string {
	info := q.content["output"].(map[string]any)["ownerInfo"].(map[string]any)
	return fmt.Sprintf("%s %s %v", q.key.Name, q.content["worker"], info["currentRound"])
}

func ackAll(t *testing.T, st *store.Store) {
	t.Helper()
	last, err := st.LastSeq()
	require.NoError(t, err)
	_, err = st.Ack(last)
	require.NoError(t, err)
}

// TestAfterASnapshotTheNewestTrainingReportsAreQueuedAgain: GM acknowledged a trainer's last
// report and died before its status showed it; the snapshot the next GM sends must bring each
// worker's newest report about each job back into the outbox, as events, and nothing about a
// job the node no longer holds.
func TestAfterASnapshotTheNewestTrainingReportsAreQueuedAgain(t *testing.T) {
	st := openStore(t)
	fl := flForwarder(t, outboxReporter{st: st})
	ctx := t.Context()
	holdJob(t, fl, "fl-a", "uid-a")
	holdJob(t, fl, "fl-b", "uid-b")

	for round := 1; round <= 3; round++ {
		require.NoError(t, fl.HandleWorkerMessage(ctx, flMessage("fl-a", "train-0", "running", round)))
	}
	require.NoError(t, fl.HandleWorkerMessage(ctx, flMessage("fl-a", "train-0", "completed", 4)))
	require.NoError(t, fl.HandleWorkerMessage(ctx, flMessage("fl-a", "train-1", "running", 2)))
	require.NoError(t, fl.HandleWorkerMessage(ctx, flMessage("fl-b", "train-0", "running", 7)))
	ackAll(t, st) // GM took them all
	require.Empty(t, queuedReports(t, st))

	fl.SnapshotApplied(ctx)
	var got []string
	for _, q := range queuedReports(t, st) {
		require.Equal(t, store.ClassWorkerEvent, q.class, "a resent copy must never replace a newer queued report")
		require.Equal(t, channel.Key{Kind: KindFederatedLearningJob, Namespace: "ns", Name: q.key.Name}, q.key)
		got = append(got, flRound(q))
	}
	require.ElementsMatch(t, []string{"fl-a train-0 4", "fl-a train-1 2", "fl-b train-0 7"}, got)
	completed := 0
	for _, q := range queuedReports(t, st) {
		if q.content["status"] == "completed" {
			completed++
		}
	}
	require.Equal(t, 1, completed, "the last report is resent as it was sent")

	// A deleted job's reports are forgotten; the others are sent again at every snapshot.
	ackAll(t, st)
	fl.ResourceDeleted(ctx, store.ResourceKey{Kind: KindFederatedLearningJob, Namespace: "ns", Name: "fl-a"})
	fl.SnapshotApplied(ctx)
	got = nil
	for _, q := range queuedReports(t, st) {
		got = append(got, flRound(q))
	}
	require.Equal(t, []string{"fl-b train-0 7"}, got)
}

// TestOnlyFederatedLearningResendsAfterASnapshot: joint inference reports are counted events
// (the chaos workers' IDs) or cumulative counters; sending one twice would count it twice.
func TestOnlyFederatedLearningResendsAfterASnapshot(t *testing.T) {
	st := openStore(t)
	ji, err := NewForwarder(KindJointInferenceService, outboxReporter{st: st})
	require.NoError(t, err)
	ctx := t.Context()
	require.NoError(t, ji.HandleWorkerMessage(ctx, jiMessage("edge-0", 5, 0)))
	ackAll(t, st)
	ji.SnapshotApplied(ctx)
	require.Empty(t, queuedReports(t, st))
}

// TestAResendTheOutboxRefusesIsKeptForTheNextSnapshot: a full outbox at the snapshot loses
// nothing; the report goes with the next snapshot.
func TestAResendTheOutboxRefusesIsKeptForTheNextSnapshot(t *testing.T) {
	st := openStore(t)
	refusing := &refusingReporter{outboxReporter: outboxReporter{st: st}}
	fl := flForwarder(t, refusing)
	ctx := t.Context()
	holdJob(t, fl, "fl-a", "uid-a")
	require.NoError(t, fl.HandleWorkerMessage(ctx, flMessage("fl-a", "train-0", "completed", 20)))
	ackAll(t, st)

	refusing.refuse = true
	fl.SnapshotApplied(ctx)
	require.Empty(t, queuedReports(t, st))
	refusing.refuse = false
	fl.SnapshotApplied(ctx)
	reports := queuedReports(t, st)
	require.Len(t, reports, 1)
	require.Equal(t, "fl-a train-0 20", flRound(reports[0]))
}

// refusingReporter answers like a full outbox while refuse is set.
type refusingReporter struct {
	outboxReporter
	refuse bool
}

func (r *refusingReporter) ReportAs(ctx context.Context, key channel.Key, content []byte, opts store.EnqueueOptions) error {
	if r.refuse {
		return fmt.Errorf("queueing: %w", store.ErrOutboxFull)
	}
	return r.outboxReporter.ReportAs(ctx, key, content, opts)
}

// TestOnlyPublishedTrainersOfHeldJobsAreKept: a report with the job's token may name any worker
// and phase; the LC keeps for resending only the newest training report of each worker GM
// published, about a job the node holds, so a worker cannot make it hold more than GM bound.
func TestOnlyPublishedTrainersOfHeldJobsAreKept(t *testing.T) {
	st := openStore(t)
	fl := flForwarder(t, outboxReporter{st: st})
	ctx := t.Context()
	holdJob(t, fl, "fl-a", "uid-a")

	invented := flMessage("fl-a", "not-a-pod", "running", 9)
	invented.PublishedWorker = false
	otherPhase := flMessage("fl-a", "train-0", "completed", 9)
	otherPhase.Kind = "eval"
	for _, msg := range []WorkerMessage{invented, otherPhase, flMessage("fl-b", "train-0", "running", 9)} {
		require.NoError(t, fl.HandleWorkerMessage(ctx, msg), "forwarded all the same: GM decides on it")
	}
	require.NoError(t, fl.HandleWorkerMessage(ctx, flMessage("fl-a", "train-0", "running", 3)))
	ackAll(t, st)
	fl.SnapshotApplied(ctx)
	require.Equal(t, []string{"fl-a train-0 3"}, queuedRounds(t, st))
}

// TestAJobCreatedAgainGetsNoReportOfTheOldOne: a job deleted and created under its name while the
// node was cut off reaches the LC as a new version with another UID and no delete; the old
// job's reports must not be resent as the new one's (its trainer pods have the same names).
func TestAJobCreatedAgainGetsNoReportOfTheOldOne(t *testing.T) {
	st := openStore(t)
	fl := flForwarder(t, outboxReporter{st: st})
	ctx := t.Context()
	holdJob(t, fl, "fl-a", "uid-old")
	require.NoError(t, fl.HandleWorkerMessage(ctx, flMessage("fl-a", "train-0", "completed", 20)))
	ackAll(t, st)

	holdJob(t, fl, "fl-a", "uid-new")
	fl.SnapshotApplied(ctx)
	require.Empty(t, queuedRounds(t, st))

	// A report queued after its job was deleted is not resent either.
	require.NoError(t, fl.HandleWorkerMessage(ctx, flMessage("fl-a", "train-0", "running", 2)))
	fl.ResourceDeleted(ctx, store.ResourceKey{Kind: KindFederatedLearningJob, Namespace: "ns", Name: "fl-a"})
	require.NoError(t, fl.HandleWorkerMessage(ctx, flMessage("fl-a", "train-0", "running", 3)))
	ackAll(t, st)
	fl.SnapshotApplied(ctx)
	require.Empty(t, queuedRounds(t, st))
}
