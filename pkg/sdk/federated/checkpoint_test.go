package federated

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDirStoreRoundTrip(t *testing.T) {
	store := DirStore{Dir: filepath.Join(t.TempDir(), "ckpt")}
	ctx := context.Background()
	cp, err := store.Load(ctx)
	require.NoError(t, err)
	require.Nil(t, cp, "no checkpoint yet")
	want := &Checkpoint{
		Job: "j", Algorithm: AlgorithmFedAvg, Round: 4, TotalSample: 99, Finished: true, Reason: "exit round 4 reached",
		Metrics: map[string]float64{"accuracy": 0.91}, SavedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Weights: Weights{{Shape: []int{2}, Values: []float64{0.1, 1e-300}}, {Shape: []int{}, Values: []float64{-3}}},
	}
	require.NoError(t, store.Save(ctx, want))
	got, err := store.Load(ctx)
	require.NoError(t, err)
	require.Equal(t, want, got)
	// A second save replaces the first and leaves no temporary file.
	want.Round = 5
	require.NoError(t, store.Save(ctx, want))
	entries, err := os.ReadDir(store.Dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	got, err = store.Load(ctx)
	require.NoError(t, err)
	require.Equal(t, 5, got.Round)
	// The server optimizer's velocity travels in the same file.
	want.Velocity = Weights{{Shape: []int{2}, Values: []float64{-0.5, 2}}, {Shape: []int{}, Values: []float64{1e-300}}}
	require.NoError(t, store.Save(ctx, want))
	got, err = store.Load(ctx)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func TestDirStoreDetectsCorruption(t *testing.T) {
	store := DirStore{Dir: t.TempDir()}
	require.NoError(t, store.Save(context.Background(), &Checkpoint{Job: "j", Algorithm: AlgorithmFedAvg, Round: 1, Weights: Weights{{Shape: []int{1}, Values: []float64{1}}}}))
	path := filepath.Join(store.Dir, CheckpointFile)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	data[len(data)/2] ^= 0xff
	require.NoError(t, os.WriteFile(path, data, 0o600))
	_, err = store.Load(context.Background())
	require.ErrorContains(t, err, "checksum")
	require.NoError(t, os.WriteFile(path, data[:3], 0o600))
	_, err = store.Load(context.Background())
	require.ErrorContains(t, err, "truncated")
}

func TestServerResumesFromCheckpoint(t *testing.T) {
	dir := t.TempDir()
	store := DirStore{Dir: dir}
	policy := Policy{Participants: 1, ExitRound: 3}
	s, url := startServer(t, ServerOptions{Store: store, Policy: policy})
	a, _ := dialPython(t, url, "a")
	a.sendUpdate(5, `[[1.0, 2.0]]`)
	frame, _ := a.recvWeight()
	require.Equal(t, 1, decodeRecv(t, frame).RoundNumber)
	a.sendUpdate(5, `[[3.0, 4.0]]`)
	frame, _ = a.recvWeight()
	require.Equal(t, 2, decodeRecv(t, frame).RoundNumber)
	// The checkpoint was on disk before the client saw round 2.
	cp, err := store.Load(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, cp.Round)
	require.Equal(t, []float64{3, 4}, cp.Weights[0].Values)
	s.Close() // the aggregator dies

	// A new aggregator resumes at round 2; a Go client asking for sync gets
	// the round-2 model; a Python client that restarted with its initial
	// model is answered with it too, and round 3 ends training.
	s2, url2 := startServer(t, ServerOptions{Store: store, Policy: policy})
	require.Equal(t, 2, s2.Stats().Round)
	client, err := NewClient(ClientOptions{URL: url2, ClientID: "go", JobName: testJob})
	require.NoError(t, err)
	sess, agg, err := client.dialOnce(testContext(t))
	require.NoError(t, err)
	require.Equal(t, 2, agg.Round)
	require.Equal(t, Weights{{Shape: []int{2}, Values: []float64{3, 4}}}, agg.Weights)
	client.closeSession(sess)

	p, _ := dialPython(t, url2, "a")
	p.sendUpdate(5, `[[9.0, 9.0]]`)
	frame, _ = p.recvWeight()
	require.Equal(t, 2, decodeRecv(t, frame).RoundNumber, "an update from the initial model is late")
	p.sendUpdate(5, `[[5.0, 6.0]]`)
	frame, _ = p.recvWeight()
	msg := decodeRecv(t, frame)
	require.Equal(t, 3, msg.RoundNumber)
	require.Equal(t, "ok", msg.Data.ExitFlag)

	// A checkpoint of another job is not resumed.
	_, err = NewServer(testContext(t), ServerOptions{Job: "other", Store: store, Policy: policy})
	require.ErrorContains(t, err, "belongs to job")
}

func TestResumedFinishedServerLingersForClients(t *testing.T) {
	store := DirStore{Dir: t.TempDir()}
	require.NoError(t, store.Save(context.Background(), &Checkpoint{Job: testJob, Algorithm: AlgorithmFedAvg, Round: 2, Finished: true, Reason: "done",
		Weights: Weights{{Shape: []int{1}, Values: []float64{8}}}}))
	s, url := startServer(t, ServerOptions{Store: store, ResumeLinger: time.Hour, Policy: Policy{Participants: 1, ExitRound: 5}})
	require.True(t, s.Stats().Finished)
	p, _ := dialPython(t, url, "a")
	p.sendUpdate(1, `[[1.0]]`)
	frame, _ := p.recvWeight()
	msg := decodeRecv(t, frame)
	require.Equal(t, "ok", msg.Data.ExitFlag)
	require.Equal(t, [][]float64{{8}}, msg.Data.Weights)
	require.NoError(t, p.ws.Close())
	waitFor(t, "the client to leave", func() bool { return s.connected() == 0 })
	select {
	case <-s.Done():
		t.Fatal("ended during the linger")
	default:
	}
}

// A checkpoint records the job's namespace and UID; a job with the same name
// but another namespace or UID (deleted and created again) refuses it
// instead of resuming someone else's training. Checkpoints without the
// fields (older ones, or written without NAMESPACE/SEDNA_JOB_UID) still load.
func TestCheckpointOfAnotherJobInstanceIsRefused(t *testing.T) {
	ctx := testContext(t)
	weights := Weights{{Shape: []int{1}, Values: []float64{0.25}}}
	save := func(namespace, uid string) DirStore {
		store := DirStore{Dir: t.TempDir()}
		require.NoError(t, store.Save(ctx, &Checkpoint{Job: testJob, Namespace: namespace, JobUID: uid, Algorithm: AlgorithmFedAvg, Round: 2, TotalSample: 3, Weights: weights}))
		return store
	}
	newServer := func(store DirStore, namespace, uid string) (*Server, error) {
		return NewServer(ctx, ServerOptions{Job: testJob, Namespace: namespace, JobUID: uid, Store: store, Policy: Policy{Participants: 1, ExitRound: 5}})
	}

	_, err := newServer(save("team-a", "uid-1"), "team-a", "uid-2")
	require.ErrorContains(t, err, `checkpoint belongs to an earlier job "surface-defect" with UID uid-1, this job's UID is uid-2`)
	_, err = newServer(save("team-a", "uid-1"), "team-b", "uid-1")
	require.ErrorContains(t, err, `namespace "team-a", this is namespace "team-b"`)

	// Same job: resumed, and the fields go on into the next checkpoints.
	s, err := newServer(save("team-a", "uid-1"), "team-a", "uid-1")
	require.NoError(t, err)
	cp := s.Checkpoint()
	require.Equal(t, 2, cp.Round)
	require.Equal(t, "team-a", cp.Namespace)
	require.Equal(t, "uid-1", cp.JobUID)
	again, err := UnmarshalCheckpoint(must(cp.MarshalBinary()))
	require.NoError(t, err)
	require.Equal(t, "uid-1", again.JobUID)
	require.Equal(t, "team-a", again.Namespace)

	// Unknown on either side: resumed, as before.
	s, err = newServer(save("", ""), "team-a", "uid-9")
	require.NoError(t, err)
	require.Equal(t, 2, s.Stats().Round)
	s, err = newServer(save("team-a", "uid-1"), "", "")
	require.NoError(t, err)
	require.Equal(t, 2, s.Stats().Round)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
