package jobstate

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/internal/rounds"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/managertest"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

const (
	testStateNS = "testjob"
	testPoolNS  = "testjob-pools"
)

// testRecord is a manager's record as the managers write theirs: Reports embedded.
type testRecord struct {
	State    rounds.State          `json:"state"`
	Furthest sednav1.LearningStage `json:"furthest,omitempty"`
	Note     string                `json:"note,omitempty"`
	Reports
}

func (r *testRecord) RoundState() *rounds.State           { return &r.State }
func (r *testRecord) Entered(stage sednav1.LearningStage) { r.Furthest = stage }

type testSaved = Saved[testRecord, *testRecord]

type fixture struct {
	t        *testing.T
	path     string
	st       *store.Store
	reporter *managertest.Reporter
	now      time.Time
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, path: filepath.Join(t.TempDir(), "lc.db"), reporter: &managertest.Reporter{}, now: time.Unix(1000, 0)}
	f.reopen()
	return f
}

// reopen closes the store (if open) and opens it again, as a restarted LC does.
func (f *fixture) reopen() {
	if f.st != nil {
		require.NoError(f.t, f.st.Close())
	}
	st, err := store.Open(f.path, store.Options{})
	require.NoError(f.t, err)
	f.st = st
	f.t.Cleanup(func() { _ = st.Close() })
}

func (f *fixture) saved() *testSaved {
	s := NewSaved[testRecord](Config{
		Store: f.st, Reporter: f.reporter, Now: func() time.Time { return f.now }, Kind: "testjob",
		StateNamespace: testStateNS, PoolNamespace: testPoolNS, Noun: "test",
	}, store.ResourceKey{Kind: "testjob", Namespace: "default", Name: "j"})
	return &s
}

func (f *fixture) load(s *testSaved) {
	require.NoError(f.t, s.Load(context.Background(), testRecord{State: rounds.InitialState}))
}

func (f *fixture) storedRecord() map[string]any {
	raw, found, err := f.st.GetState(testStateNS, "default/j")
	require.NoError(f.t, err)
	require.True(f.t, found)
	var fields map[string]any
	require.NoError(f.t, json.Unmarshal(raw, &fields))
	return fields
}

func encodeState(state rounds.State) ([]byte, error) {
	return json.Marshal(map[string]any{"phase": state.Stage, "status": state.StageState, "round": state.Round})
}

// TestTransitionSavesTheReportAndTheRecordSurvivesARestart: a transition's report is saved with
// the new state under "pending" and "lastReport" at the record's top level (the managers' stored
// format), handed over by Flush, and a restarted LC resumes the record and the pools.
func TestTransitionSavesTheReportAndTheRecordSurvivesARestart(t *testing.T) {
	f := newFixture(t)
	s := f.saved()
	f.load(s)
	require.Equal(t, rounds.InitialState, s.Rec.State, "nothing saved yet")

	pools := rounds.Pools{DatasetURL: "/data/index.txt", SeenSamples: 3, TrainPool: []string{"a"}}
	refuse := true
	f.reporter.SetHook(func(context.Context, channel.Key, []byte) error {
		if refuse {
			return errors.New("queue full")
		}
		return nil
	})
	require.NoError(t, s.Transition(context.Background(), rounds.EventTrainTriggerFired, func(r *testRecord) { r.Note = "round data" }, encodeState, &pools))
	state := rounds.State{Stage: sednav1.StageTrain, StageState: sednav1.StageReady, Round: 1}
	require.Equal(t, state, s.Rec.State)
	fields := f.storedRecord()
	require.Len(t, fields["pending"], 1, "the report is saved with the transition, before it is handed over")
	require.NotEmpty(t, fields["lastReport"])
	require.Equal(t, "Train", fields["furthest"], "Entered is told the stage the round entered")
	require.Empty(t, f.reporter.Contents())

	refuse = false
	s.Flush(context.Background())
	require.Equal(t, []string{`{"phase":"Train","round":1,"status":"Ready"}`}, f.reporter.Contents())
	require.NotContains(t, f.storedRecord(), "pending", "the reports taken are forgotten")
	require.Contains(t, f.storedRecord(), "lastReport")

	f.reopen()
	again := f.saved()
	f.load(again)
	require.Equal(t, state, again.Rec.State)
	require.Equal(t, "round data", again.Rec.Note)
	require.Equal(t, pools, again.Pools)
	require.Equal(t, f.now, again.Reported, "a resumed job waits ResendAfter from now before sending again")
}

// TestFlushKeepsWhatTheReporterRefused: the reports are handed over in order; the first one the
// Reporter refuses and those after it stay saved for the next pass.
func TestFlushKeepsWhatTheReporterRefused(t *testing.T) {
	f := newFixture(t)
	s := f.saved()
	f.load(s)
	refuse := true
	f.reporter.SetHook(func(_ context.Context, _ channel.Key, content []byte) error {
		if refuse && string(content) == `"second"` {
			return errors.New("queue full")
		}
		return nil
	})
	for _, content := range []string{`"first"`, `"second"`, `"third"`} {
		rec := s.Rec
		rec.Pending = append(rec.Pending, json.RawMessage(content))
		require.NoError(t, s.Save(rec))
	}
	s.Flush(context.Background())
	require.Equal(t, []string{`"first"`}, f.reporter.Contents())
	require.Equal(t, []any{"second", "third"}, f.storedRecord()["pending"])

	refuse = false
	s.Flush(context.Background())
	require.Equal(t, []string{`"first"`, `"second"`, `"third"`}, f.reporter.Contents())
	for _, report := range f.reporter.Reports() {
		require.Equal(t, channel.Key{Kind: "testjob", Namespace: "default", Name: "j"}, report.Key)
	}
}

// TestTransitionRefusesAnEventTheStateDoesNotAllow: nothing is saved or changed.
func TestTransitionRefusesAnEventTheStateDoesNotAllow(t *testing.T) {
	f := newFixture(t)
	s := f.saved()
	f.load(s)
	err := s.Transition(context.Background(), rounds.EventModelDeployed, nil, encodeState, nil)
	require.ErrorContains(t, err, "not allowed")
	require.Equal(t, rounds.InitialState, s.Rec.State)
	_, found, err := f.st.GetState(testStateNS, "default/j")
	require.NoError(t, err)
	require.False(t, found)
}

// TestResendIfGMLagsSendsTheLastReportOnceGMFallsBehind: the last stage report is queued again
// only when nothing is pending, resendAfter has passed since it was handed over, and GM's
// published progress misses it.
func TestResendIfGMLagsSendsTheLastReportOnceGMFallsBehind(t *testing.T) {
	f := newFixture(t)
	s := f.saved()
	f.load(s)
	require.NoError(t, s.Transition(context.Background(), rounds.EventTrainTriggerFired, nil, encodeState, nil))
	lagging := &sednav1.LearningProgress{Stage: sednav1.StageTrain, StageState: sednav1.StageWaiting}
	ctx := context.Background()

	s.ResendIfGMLags(ctx, nil, time.Minute)
	f.now = f.now.Add(30 * time.Second)
	s.ResendIfGMLags(ctx, lagging, time.Minute)
	require.Len(t, f.reporter.Contents(), 1, "no status yet, or not long enough")

	f.now = f.now.Add(time.Minute)
	caughtUp := &sednav1.LearningProgress{Stage: sednav1.StageTrain, StageState: sednav1.StageReady, Round: 1}
	s.ResendIfGMLags(ctx, caughtUp, time.Minute)
	require.Len(t, f.reporter.Contents(), 1, "GM took the report")

	s.ResendIfGMLags(ctx, lagging, time.Minute)
	contents := f.reporter.Contents()
	require.Len(t, contents, 2)
	require.Equal(t, contents[0], contents[1], "the last stage report is sent again")
	require.Equal(t, f.now, s.Reported)

	s.ResendIfGMLags(ctx, lagging, time.Minute)
	require.Len(t, f.reporter.Contents(), 2, "not again before another resendAfter")
}

// TestQueueAndAdoptRound: Queue saves a report that is not LastReport and hands it over; a job
// without a saved record continues GM's round count, once.
func TestQueueAndAdoptRound(t *testing.T) {
	f := newFixture(t)
	s := f.saved()
	f.load(s)
	s.AdoptRound(context.Background(), 4)
	require.Equal(t, int32(4), s.Rec.State.Round)
	s.AdoptRound(context.Background(), 9)
	require.Equal(t, int32(4), s.Rec.State.Round, "only the first version after Load")

	require.NoError(t, s.Queue(context.Background(), json.RawMessage(`{"worker":"w"}`)))
	require.Equal(t, []string{`{"worker":"w"}`}, f.reporter.Contents())
	require.NotContains(t, f.storedRecord(), "lastReport")

	f.reopen()
	again := f.saved()
	f.load(again)
	again.AdoptRound(context.Background(), 9)
	require.Equal(t, int32(4), again.Rec.State.Round, "a resumed record keeps its own round count")
}

// TestLoadMovesPoolsOutOfAnOldRecord: a record saved before the pools had a key of their own
// carries them; Load moves them to the pool blob in the same transaction as the record.
func TestLoadMovesPoolsOutOfAnOldRecord(t *testing.T) {
	f := newFixture(t)
	old := `{"state":{"stage":"Train","stageState":"Waiting","round":2},"datasetURL":"/data/i.txt","seenSamples":2,"trainPool":["a","b"]}`
	require.NoError(t, f.st.PutState(testStateNS, "default/j", []byte(old)))
	s := f.saved()
	f.load(s)
	want := rounds.Pools{DatasetURL: "/data/i.txt", SeenSamples: 2, TrainPool: []string{"a", "b"}}
	require.Equal(t, want, s.Pools)
	raw, found, err := f.st.GetBlob(testPoolNS, "default/j")
	require.NoError(t, err)
	require.True(t, found)
	var blob rounds.Pools
	require.NoError(t, json.Unmarshal(raw, &blob))
	require.Equal(t, want, blob)
	require.Equal(t, int32(2), s.Rec.State.Round)
}

// TestLoadStartsOverFromARecordThatDoesNotParse, and Forget removes record and pools.
func TestLoadStartsOverFromARecordThatDoesNotParseAndForgetRemovesAll(t *testing.T) {
	f := newFixture(t)
	require.NoError(t, f.st.PutState(testStateNS, "default/j", []byte(`{"state":`)))
	s := f.saved()
	f.load(s)
	require.Equal(t, rounds.InitialState, s.Rec.State)

	require.NoError(t, s.SaveAll(testRecord{State: rounds.InitialState}, rounds.Pools{SeenSamples: 1}))
	require.NoError(t, Forget(f.st, testStateNS, testPoolNS, store.ResourceKey{Kind: "testjob", Namespace: "default", Name: "j"}))
	_, found, err := f.st.GetState(testStateNS, "default/j")
	require.NoError(t, err)
	require.False(t, found)
	_, found, err = f.st.GetBlob(testPoolNS, "default/j")
	require.NoError(t, err)
	require.False(t, found)
}

// TestDatasetReadsWhatGMSent: a Dataset that is not here, or does not parse, is no Dataset.
func TestDatasetReadsWhatGMSent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, ok := Dataset(ctx, f.st, "default", "d")
	require.False(t, ok)

	put := func(name, object string) {
		_, err := f.st.PutResource(store.Resource{Key: store.ResourceKey{Kind: DatasetKind, Namespace: "default", Name: name}, Version: 1, Object: []byte(object)})
		require.NoError(t, err)
	}
	put("d", `{"spec":{"url":"/data/index.txt","format":"txt"}}`)
	put("broken", `{"spec":`)
	ds, ok := Dataset(ctx, f.st, "default", "d")
	require.True(t, ok)
	require.Equal(t, "/data/index.txt", ds.Spec.URL)
	_, ok = Dataset(ctx, f.st, "default", "broken")
	require.False(t, ok)
	_, ok = Dataset(ctx, f.st, "other", "d")
	require.False(t, ok, "another namespace's Dataset")
}

// TestTakeWorkerReportForwardsAndMovesInOneSave: a report whose event the state allows is saved
// forwarded first, then the stage report of the transition; one whose event is not allowed is
// only forwarded.
func TestTakeWorkerReportForwardsAndMovesInOneSave(t *testing.T) {
	f := newFixture(t)
	s := f.saved()
	f.load(s)
	ctx := context.Background()
	msg := managers.WorkerMessage{Name: "j-train-1", Kind: "train", Status: "running"}

	moved, err := s.TakeWorkerReport(ctx, msg, []byte(`{"worker":"early"}`), rounds.EventStagePodStarted, nil, encodeState, "")
	require.NoError(t, err)
	require.False(t, moved, "Train/Waiting does not allow StagePodStarted")
	require.Equal(t, rounds.InitialState, s.Rec.State)

	require.NoError(t, s.Transition(ctx, rounds.EventTrainTriggerFired, nil, encodeState, nil))
	moved, err = s.TakeWorkerReport(ctx, msg, []byte(`{"worker":"running"}`), rounds.EventStagePodStarted,
		func(r *testRecord) { r.Note = "started" }, encodeState, "")
	require.NoError(t, err)
	require.True(t, moved)
	require.Equal(t, sednav1.StageRunning, s.Rec.State.StageState)
	require.Equal(t, "started", s.Rec.Note)
	require.Equal(t, []string{
		`{"worker":"early"}`,
		`{"phase":"Train","round":1,"status":"Ready"}`,
		`{"worker":"running"}`,
		`{"phase":"Train","round":1,"status":"Running"}`,
	}, f.reporter.Contents())
}
