package jobstate

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/klog/v2"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/internal/rounds"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
)

// Reports are the reports of a job record not yet handed to the Reporter and the newest stage
// report. A record embeds it (without a JSON name, so the fields stay at the record's top level).
type Reports struct {
	// Pending are reports for GM saved with the transition that produced them, oldest first.
	Pending []json.RawMessage `json:"pending,omitempty"`
	// LastReport is the newest stage report: it carries the whole current state, so it is sent
	// again when the status GM publishes shows GM never took it (a GM that crashed between
	// acknowledging a report and writing it).
	LastReport json.RawMessage `json:"lastReport,omitempty"`
}

func (r *Reports) reports() *Reports { return r }

// Record is what Saved needs of a manager's record type R, through *R: the embedded Reports, the
// round state, and where to note the furthest stage the round entered.
type Record[R any] interface {
	*R
	reports() *Reports
	// RoundState is the record's state.
	RoundState() *rounds.State
	// Entered notes that the current round entered stage.
	Entered(stage sednav1.LearningStage)
}

// Config is what the jobs of one manager share about their saved state.
type Config struct {
	Store    *store.Store
	Reporter managers.Reporter
	// Now is the clock of Reported.
	Now func() time.Time
	// Kind is the channel kind the jobs' reports go to GM under.
	Kind string
	// StateNamespace and PoolNamespace are the store namespaces of the records and the pools.
	StateNamespace, PoolNamespace string
	// Noun names the kind of job in log messages: "incremental learning" logs "Resumed
	// incremental learning job" and "Incremental learning job moved".
	Noun string
}

// NewSaved is the saved state of the job key, to be read by Load.
func NewSaved[R any, P Record[R]](c Config, key store.ResourceKey) Saved[R, P] {
	return Saved[R, P]{Config: c, Key: channel.Key{Kind: c.Kind, Namespace: key.Namespace, Name: key.Name}}
}

// Saved is one job's record and sample pools as the LC store holds them. It is not safe for
// concurrent use: the job's lock guards it.
type Saved[R any, P Record[R]] struct {
	Config
	// Key is the job's channel key: its reports go to GM under it.
	Key channel.Key

	// Rec and Pools are what was saved last.
	Rec   R
	Pools rounds.Pools
	// Reported is when LastReport was last handed over (by a transition, at load, or sent again).
	Reported time.Time

	loaded bool
	// fresh: no saved record was found, so the round count starts from GM's published round (a
	// wiped store, or the Dataset moved here) rather than from 0, whose round numbers and stage
	// pod names GM has already used.
	fresh bool
}

func (s *Saved[R, P]) stateKey() string { return s.Key.Namespace + "/" + s.Key.Name }

func (s *Saved[R, P]) rec() P { return P(&s.Rec) }

// Load reads the saved record and pools once (later calls return at once); without a saved
// record, or with one that does not parse, the job starts from initial.
func (s *Saved[R, P]) Load(ctx context.Context, initial R) error {
	if s.loaded {
		return nil
	}
	raw, found, err := s.Store.GetState(s.StateNamespace, s.stateKey())
	if err != nil {
		return err
	}
	s.Rec, s.Pools, s.fresh = initial, rounds.Pools{}, true
	if found {
		var rec R
		if err := json.Unmarshal(raw, &rec); err != nil {
			klog.FromContext(ctx).Error(err, "The job's saved record does not parse; starting over")
		} else {
			s.Rec, s.fresh = rec, false
			klog.FromContext(ctx).V(2).Info("Resumed "+s.Noun+" job", "state", s.rec().RoundState().String(), "pendingReports", len(s.rec().reports().Pending))
		}
	}
	if !s.fresh {
		if err := s.loadPools(ctx, raw); err != nil {
			return err
		}
	}
	s.loaded = true
	s.Reported = s.Now() // a restarted LC gives GM the usual time before sending again
	return nil
}

// loadPools reads the job's sample pools. A record saved before the pools had a key of their own
// (incremental learning's first format) carries them itself (rawRecord); they are moved out at
// once, in one transaction with the record, so they cannot be lost by the next save of the record.
func (s *Saved[R, P]) loadPools(ctx context.Context, rawRecord []byte) error {
	raw, found, err := s.Store.GetBlob(s.PoolNamespace, s.stateKey())
	if err != nil {
		return err
	}
	if found {
		var pools rounds.Pools
		if err := json.Unmarshal(raw, &pools); err != nil {
			klog.FromContext(ctx).Error(err, "The job's saved sample pools do not parse; taking the dataset's samples again")
			return nil
		}
		s.Pools = pools
		return nil
	}
	var legacy rounds.Pools
	if json.Unmarshal(rawRecord, &legacy) != nil || (legacy.DatasetURL == "" && legacy.SeenSamples == 0) {
		return nil
	}
	if err := s.SaveAll(s.Rec, legacy); err != nil {
		return fmt.Errorf("moving the sample pools out of the job record: %w", err)
	}
	klog.FromContext(ctx).V(2).Info("Moved the sample pools out of the job record", "trainPool", len(legacy.TrainPool))
	return nil
}

// AdoptRound continues GM's round count when no record was found on this node and GM has
// published a later round than the record's. Only the first call after Load can change anything.
func (s *Saved[R, P]) AdoptRound(ctx context.Context, published int32) {
	if !s.fresh {
		return
	}
	s.fresh = false
	if state := s.rec().RoundState(); published > state.Round {
		state.Round = published
		klog.FromContext(ctx).Info("No saved rounds on this node; continuing GM's round count", "round", published)
	}
}

// Save saves the record alone (the pools, the large part, are written only when they change).
func (s *Saved[R, P]) Save(rec R) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := s.Store.PutState(s.StateNamespace, s.stateKey(), raw); err != nil {
		return err
	}
	s.Rec = rec
	return nil
}

// SavePools saves the sample pools alone.
func (s *Saved[R, P]) SavePools(pools rounds.Pools) error {
	raw, err := json.Marshal(pools)
	if err != nil {
		return err
	}
	if err := s.Store.PutBlob(s.PoolNamespace, s.stateKey(), raw); err != nil {
		return err
	}
	s.Pools = pools
	return nil
}

// SaveAll saves the record and the sample pools in one store transaction.
func (s *Saved[R, P]) SaveAll(rec R, pools rounds.Pools) error {
	rawRecord, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	rawPools, err := json.Marshal(pools)
	if err != nil {
		return err
	}
	err = s.Store.WriteStates(
		store.StateWrite{Namespace: s.StateNamespace, Key: s.stateKey(), Value: rawRecord},
		store.StateWrite{Namespace: s.PoolNamespace, Key: s.stateKey(), Value: rawPools, Blob: true},
	)
	if err != nil {
		return err
	}
	s.Rec, s.Pools = rec, pools
	return nil
}

// Forget removes the record and the pools of the job key (the manager's resource key) in one
// transaction.
func Forget(st *store.Store, stateNamespace, poolNamespace string, key store.ResourceKey) error {
	stateKey := key.Namespace + "/" + key.Name
	return st.WriteStates(
		store.StateWrite{Namespace: stateNamespace, Key: stateKey, Delete: true},
		store.StateWrite{Namespace: poolNamespace, Key: stateKey, Blob: true, Delete: true},
	)
}

// Transition applies event to the record's state, notes the stage the round entered (not for
// Train/Waiting, which ends a round), lets mutate fill the record (mutate may take a further
// transition of its own: a completion whose results are unusable fails at once), encodes the
// stage report of the resulting state with encode (when not nil) into Pending and LastReport, and
// saves the record, with pools in the same transaction when pools is not nil. Then it hands the
// pending reports over (Flush).
func (s *Saved[R, P]) Transition(ctx context.Context, event rounds.Event, mutate func(*R), encode func(rounds.State) ([]byte, error), pools *rounds.Pools) error {
	next := s.Rec
	nextP := P(&next)
	state, err := rounds.Next(*nextP.RoundState(), event)
	if err != nil {
		return err
	}
	*nextP.RoundState() = state
	if state.Stage != sednav1.StageTrain || state.StageState != sednav1.StageWaiting {
		nextP.Entered(state.Stage)
	}
	if mutate != nil {
		mutate(&next)
	}
	state = *nextP.RoundState()
	out := nextP.reports()
	out.Pending = slices.Clone(out.Pending)
	if encode != nil {
		content, err := encode(state)
		if err != nil {
			return fmt.Errorf("encoding the %s report: %w", state, err)
		}
		out.Pending = append(out.Pending, content)
		out.LastReport = content
		s.Reported = s.Now()
	}
	if pools != nil {
		err = s.SaveAll(next, *pools)
	} else {
		err = s.Save(next)
	}
	if err != nil {
		return fmt.Errorf("saving %s after %s: %w", state, event, err)
	}
	klog.FromContext(ctx).V(2).Info(capitalized(s.Noun+" job moved"), "event", event, "state", state.String())
	s.Flush(ctx)
	return nil
}

// Queue saves content as a pending report with the record, then hands the pending reports over.
// On error nothing was saved.
func (s *Saved[R, P]) Queue(ctx context.Context, content []byte) error {
	next := s.Rec
	out := P(&next).reports()
	out.Pending = append(slices.Clone(out.Pending), content)
	if err := s.Save(next); err != nil {
		return err
	}
	s.Flush(ctx)
	return nil
}

// Flush hands the saved reports to the Reporter in order and forgets those it took. A report that
// fails stays for the next pass.
func (s *Saved[R, P]) Flush(ctx context.Context) {
	pending := s.rec().reports().Pending
	sent := 0
	for _, content := range pending {
		if err := s.Reporter.Report(ctx, s.Key, content); err != nil {
			klog.FromContext(ctx).Error(err, "Queueing a report for GM failed; retrying next pass")
			break
		}
		sent++
	}
	if sent == 0 {
		return
	}
	next := s.Rec
	P(&next).reports().Pending = slices.Clone(pending[sent:])
	if err := s.Save(next); err != nil {
		// The reports are queued; after a restart they are at worst queued once more.
		klog.FromContext(ctx).Error(err, "Saving the job record after queueing its reports failed")
	}
}

// ResendIfGMLags queues LastReport again when nothing is pending and GM's published status
// (nil: none seen yet) has been behind the record's state for resendAfter since the report was
// handed over (a GM that crashed between taking a report and writing it). Reports carry absolute
// state: repeating one GM did take is harmless.
func (s *Saved[R, P]) ResendIfGMLags(ctx context.Context, published *sednav1.LearningProgress, resendAfter time.Duration) {
	out := s.rec().reports()
	if published == nil || len(out.LastReport) == 0 || len(out.Pending) > 0 || s.Now().Sub(s.Reported) < resendAfter {
		return
	}
	state := *s.rec().RoundState()
	if !rounds.GMLags(*published, state) {
		return
	}
	next := s.Rec
	P(&next).reports().Pending = []json.RawMessage{out.LastReport}
	if err := s.Save(next); err != nil {
		klog.FromContext(ctx).Error(err, "Saving the report to send again failed")
		return
	}
	s.Reported = s.Now()
	klog.FromContext(ctx).Info("GM's status lags behind this LC; sending the last stage report again",
		"published", fmt.Sprintf("%s/%s (round %d)", published.Stage, published.StageState, published.Round), "state", state.String())
	s.Flush(ctx)
}

func capitalized(message string) string {
	if message == "" {
		return message
	}
	return strings.ToUpper(message[:1]) + message[1:]
}

// DatasetKind is the store kind of the Datasets the learning jobs read.
const DatasetKind = "dataset"

// Dataset returns the Dataset namespace/name as GM sent it to this node, or false (logged) when
// it is not here yet or does not parse.
func Dataset(ctx context.Context, st *store.Store, namespace, name string) (*sednav1.Dataset, bool) {
	logger := klog.FromContext(ctx)
	resource, found, err := st.GetResource(store.ResourceKey{Kind: DatasetKind, Namespace: namespace, Name: name})
	if err != nil || !found {
		logger.V(4).Info("Dataset not on this node yet", "dataset", name, "err", err)
		return nil, false
	}
	var ds sednav1.Dataset
	if err := json.Unmarshal(resource.Object, &ds); err != nil {
		logger.Error(err, "Dataset from GM does not parse", "dataset", name)
		return nil, false
	}
	return &ds, true
}

// Pass is the body of a learning job's periodic pass: hand GM what is pending, send the last
// stage report again if GM lags (ResendIfGMLags), take the dataset's new samples, evaluate the
// train trigger while the round waits for it, and take the steps the LC makes on its own.
func (s *Saved[R, P]) Pass(ctx context.Context, published *sednav1.LearningProgress, resendAfter time.Duration, takeSamples, checkTrainTrigger, advance func(context.Context)) {
	s.Flush(ctx)
	s.ResendIfGMLags(ctx, published, resendAfter)
	takeSamples(ctx)
	if state := s.rec().RoundState(); state.Stage == sednav1.StageTrain && state.StageState == sednav1.StageWaiting {
		checkTrainTrigger(ctx)
	}
	advance(ctx)
}

// TakeWorkerReport saves forwarded, msg relayed to GM, and, when event is allowed in the current
// state, the transition it brings (Transition with mutate and encode), in one save; then it hands
// the reports over. With no event, or one not allowed (the inference worker's reports, a stage
// the round is not in, a late or repeated report, a status that moves nothing), the report is only
// forwarded and why is logged. moved says whether the round moved.
func (s *Saved[R, P]) TakeWorkerReport(ctx context.Context, msg managers.WorkerMessage, forwarded []byte, event rounds.Event, mutate func(*R), encode func(rounds.State) ([]byte, error), why string) (moved bool, err error) {
	if event == "" || !rounds.Allowed(*s.rec().RoundState(), event) {
		if err := s.Queue(ctx, forwarded); err != nil {
			return false, fmt.Errorf("saving the report of worker %s: %w", msg.Name, err)
		}
		klog.FromContext(ctx).V(2).Info("Worker report forwarded only", "phase", msg.Kind, "status", msg.Status, "state", s.rec().RoundState().String(), "why", why)
		return false, nil
	}
	withForward := func(rec *R) {
		out := P(rec).reports()
		out.Pending = append(slices.Clone(out.Pending), forwarded)
		if mutate != nil {
			mutate(rec)
		}
	}
	if err := s.Transition(ctx, event, withForward, encode, nil); err != nil {
		return false, fmt.Errorf("taking the report of worker %s: %w", msg.Name, err)
	}
	return true, nil
}
