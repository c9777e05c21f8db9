package lifelonglearning

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/incrementallearning"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/internal/jobstate"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/internal/rounds"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
	"github.com/sedna-go/sedna/pkg/localcontroller/trigger"
)

// The reports are those of the incremental learning manager: GM's lifelong learning controller
// takes them through the stage machine it shares with incremental learning.
type (
	// ModelRef is a model (here a KB index) as upstream's condition data names it.
	ModelRef = incrementallearning.ModelRef
	// StageInput is upstream's input of a stage.
	StageInput = incrementallearning.StageInput
	// StageOutput is upstream's output of a stage.
	StageOutput = incrementallearning.StageOutput
	// StageReport is the LC's report to GM after a transition.
	StageReport = incrementallearning.StageReport
	// ForwardedReport is a worker report relayed to GM.
	ForwardedReport = incrementallearning.ForwardedReport
	// Problem is what blocks the current stage.
	Problem = incrementallearning.Problem
)

// Reasons of a Problem this manager reports.
const (
	ReasonOutputNotWritable       = incrementallearning.ReasonOutputNotWritable
	ReasonDatasetIndexNotReadable = incrementallearning.ReasonDatasetIndexNotReadable
	ReasonDeployNotWritable       = incrementallearning.ReasonDeployNotWritable
	// ReasonIndexNotReadable: the trained KB index cannot be read (the KB does not answer, or
	// answers with an error).
	ReasonIndexNotReadable = "IndexNotReadable"
)

type jobSpec struct {
	obj          *sednav1.LifelongLearningJob
	trainTrigger *trigger.Trigger
}

func parseJob(obj *sednav1.LifelongLearningJob) (*jobSpec, error) {
	var problems []error
	if p := obj.Spec.Dataset.TrainProb; !(p > 0 && p <= 1) {
		problems = append(problems, fmt.Errorf("spec.dataset.trainProb %v is not in (0, 1]", p))
	}
	if obj.Spec.Dataset.Name == "" {
		problems = append(problems, errors.New("spec.dataset.name is empty"))
	}
	if err := checkHostPath(obj.Spec.OutputDir); err != nil {
		problems = append(problems, fmt.Errorf("spec.outputDir: %w (this LC writes lifelong learning rounds to host paths only)", err))
	}
	trainTrigger, err := trigger.New(obj.Spec.TrainSpec.Trigger)
	if err != nil {
		problems = append(problems, fmt.Errorf("spec.trainSpec.trigger: %w", err))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return &jobSpec{obj: obj, trainTrigger: trainTrigger}, nil
}

// roundData is what the manager knows about the current round.
type roundData struct {
	StartTime *metav1.Time `json:"startTime,omitempty"`
	TrainData string       `json:"trainData,omitempty"`
	EvalData  string       `json:"evalData,omitempty"`
	OutputDir string       `json:"outputDir,omitempty"`
	// Index is the KB index the train worker reported (its models[0]).
	Index       *ModelRef        `json:"index,omitempty"`
	TrainModels []map[string]any `json:"trainModels,omitempty"`
	EvalModels  []map[string]any `json:"evalModels,omitempty"`
	Deployed    bool             `json:"deployed,omitempty"`
	Message     string           `json:"message,omitempty"`
	// FurthestStage is the last stage the round entered.
	FurthestStage sednav1.LearningStage `json:"furthestStage,omitempty"`
}

// record is a job's persisted state, without its sample pools.
type record struct {
	State   rounds.State `json:"state"`
	Current roundData    `json:"current"`
	// Header is the dataset index's csv header line, written first in every data file.
	Header string `json:"header,omitempty"`
	// LastIndex is the newest trained KB index: the CLOUD_KB_INDEX of the next round.
	LastIndex *ModelRef               `json:"lastIndex,omitempty"`
	Rounds    []sednav1.LearningRound `json:"rounds,omitempty"`
	// Reports are the pending reports and the last stage report (JSON "pending", "lastReport").
	jobstate.Reports
}

// RoundState is the record's state (jobstate.Record).
func (r *record) RoundState() *rounds.State { return &r.State }

// Entered notes the furthest stage the round entered (jobstate.Record).
func (r *record) Entered(stage sednav1.LearningStage) { r.Current.FurthestStage = stage }

// saved is a job's record and sample pools in the LC store.
type saved = jobstate.Saved[record, *record]

// job is one lifelong learning job; mu serialises its pass, worker messages and GM versions.
type job struct {
	m   *Manager
	key store.ResourceKey

	mu      sync.Mutex
	spec    *jobSpec
	saved   saved
	deleted bool
	// problem blocks the current stage; not persisted: a restarted LC finds it again.
	problem *Problem
	// published is the progress GM last published (nil: none seen yet).
	published *sednav1.LearningProgress
}

// rec is the job's saved record.
func (j *job) rec() *record { return &j.saved.Rec }

// pass hands GM what is pending, takes new samples, evaluates the train trigger and moves the
// round on. It returns the period until the next pass: the trigger's checkPeriodSeconds.
func (j *job) pass(ctx context.Context) time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.spec == nil {
		return jobstate.Period(j.m.opts.Period, nil)
	}
	period := jobstate.Period(j.m.opts.Period, j.spec.trainTrigger)
	if j.deleted || ctx.Err() != nil {
		return period
	}
	j.saved.Pass(ctx, j.published, j.m.opts.ResendAfter, j.takeSamples, j.checkTrainTrigger, j.advance)
	return period
}

// transition applies event, lets mutate fill the record, saves record (and pools, when not nil)
// in one store transaction with the report, then hands the pending reports to the Reporter.
func (j *job) transition(ctx context.Context, event rounds.Event, mutate func(*record), report *StageReport, pools *rounds.Pools) error {
	return j.saved.Transition(ctx, event, mutate, report.Encoder(j.problem), pools)
}

// blocked records that a step failed for reason and tells GM once (the job is Stalled); the step
// is tried again next pass.
func (j *job) blocked(ctx context.Context, reason string, err error) {
	if ctx.Err() != nil {
		return
	}
	problem := &Problem{Reason: reason, Message: err.Error()}
	if j.problem != nil && *j.problem == *problem {
		return
	}
	klog.FromContext(ctx).Error(err, "The job is blocked; keeping its state, telling GM and retrying next pass", "reason", reason, "state", j.rec().State.String())
	j.problem = problem
	j.reportState(ctx)
}

// unblocked clears a problem of reason and tells GM it is gone.
func (j *job) unblocked(ctx context.Context, reason string) {
	if j.problem == nil || j.problem.Reason != reason {
		return
	}
	j.problem = nil
	j.reportState(ctx)
}

// reportState queues a stage report of the unchanged state carrying the current problem, if any.
func (j *job) reportState(ctx context.Context) {
	content, err := incrementallearning.EncodeStateReport(j.rec().State, j.problem)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Encoding a stage report failed")
		return
	}
	if err := j.saved.Queue(ctx, content); err != nil {
		klog.FromContext(ctx).Error(err, "Saving a stage report failed")
	}
}

// takeSamples reads the dataset index and splits the samples added since the last pass
// (rounds.Pools.Take).
func (j *job) takeSamples(ctx context.Context) {
	logger := klog.FromContext(ctx)
	ds, ok := jobstate.Dataset(ctx, j.m.store, j.key.Namespace, j.spec.obj.Spec.Dataset.Name)
	if !ok {
		return
	}
	content, err := j.readHostFile(ds.Spec.URL, j.m.opts.MaxIndexBytes)
	if err != nil {
		j.blocked(ctx, ReasonDatasetIndexNotReadable, fmt.Errorf("reading the index of dataset %s: %w", j.spec.obj.Spec.Dataset.Name, err))
		return
	}
	j.unblocked(ctx, ReasonDatasetIndexNotReadable)
	header := ""
	if strings.EqualFold(ds.Spec.Format, "csv") {
		header, _, _ = strings.Cut(strings.ReplaceAll(string(content), "\r\n", "\n"), "\n")
	}
	next, taken := j.saved.Pools.Take(ds.Spec.URL, rounds.SplitSamples(content, ds.Spec.Format), j.spec.obj.Spec.Dataset.TrainProb)
	if taken.Fresh == 0 && !taken.Shrank && header == j.rec().Header {
		return
	}
	rec := j.saved.Rec
	rec.Header = header
	if err := j.saved.SaveAll(rec, next); err != nil {
		logger.Error(err, "Saving the new samples failed; they are taken again next pass")
		return
	}
	logger.V(2).Info("New samples", "new", taken.Fresh, "train", taken.Train, "trainPool", len(next.TrainPool), "shrank", taken.Shrank)
}

// checkTrainTrigger starts a round when the train trigger fires on the train pool's size.
func (j *job) checkTrainTrigger(ctx context.Context) {
	logger := klog.FromContext(ctx)
	if j.saved.Pools.DatasetURL == "" {
		return
	}
	result, err := j.spec.trainTrigger.Evaluate(j.m.opts.Now(), map[string]any{"num_of_samples": len(j.saved.Pools.TrainPool)})
	if err != nil {
		logger.Error(err, "Evaluating the train trigger failed")
		return
	}
	if !result.Fired {
		logger.V(4).Info("Train trigger not fired", "reason", result.Reason)
		return
	}
	round := j.rec().State.Round + 1
	out := strings.TrimSuffix(j.spec.obj.Spec.OutputDir, "/")
	dataFile := fmt.Sprintf("%s/data/train/%d/%s", out, round, j.dataName())
	outputDir := fmt.Sprintf("%s/train/%d", out, round)
	// Written before the transition: a crash in between only rewrites the same files.
	if err := j.writeData(dataFile, j.saved.Pools.TrainPool); err != nil {
		j.blocked(ctx, ReasonOutputNotWritable, err)
		return
	}
	if err := j.mkdir(outputDir); err != nil {
		j.blocked(ctx, ReasonOutputNotWritable, err)
		return
	}
	j.unblocked(ctx, ReasonOutputNotWritable)
	input := &StageInput{DataURL: dataFile, OutputDir: outputDir}
	if j.rec().LastIndex != nil {
		input.Models = []ModelRef{*j.rec().LastIndex}
	}
	now := metav1.NewTime(j.m.opts.Now())
	pools := j.saved.Pools
	pools.TrainPool = nil
	err = j.transition(ctx, rounds.EventTrainTriggerFired, func(rec *record) {
		rec.Current = roundData{StartTime: &now, TrainData: dataFile, OutputDir: outputDir, FurthestStage: sednav1.StageTrain}
	}, &StageReport{Input: input, Message: result.Reason}, &pools)
	if err != nil {
		logger.Error(err, "Starting a round failed")
		return
	}
	logger.Info("Train trigger fired; round started", "round", round, "reason", result.Reason)
}

// dataName is the round data file's name: data.csv for a csv dataset (header first), else data.txt.
func (j *job) dataName() string {
	if j.rec().Header != "" {
		return "data.csv"
	}
	return "data.txt"
}

// advance takes the steps the LC makes on its own, until the round waits for someone else.
func (j *job) advance(ctx context.Context) {
	for range 8 {
		var err error
		switch s := j.rec().State; {
		case s.Stage == sednav1.StageTrain && s.StageState == sednav1.StageCompleted:
			err = j.prepareEval(ctx)
		case s.Stage == sednav1.StageEval && s.StageState == sednav1.StageCompleted:
			err = j.transition(ctx, rounds.EventEvalDone, nil, &StageReport{}, nil)
		case s.Stage == sednav1.StageDeploy && s.StageState == sednav1.StageWaiting:
			err = j.deploy(ctx)
		case s.Stage == sednav1.StageDeploy && s.StageState == sednav1.StageReady:
			err = j.transition(ctx, rounds.EventModelDeployed, func(rec *record) { rec.Current.Deployed = true },
				&StageReport{Output: &StageOutput{Models: []map[string]any{{"format": "pkl", "url": j.deployPath()}}}}, nil)
		case s.StageState == sednav1.StageFailed || (s.Stage == sednav1.StageDeploy && s.StageState == sednav1.StageCompleted):
			err = j.closeRound(ctx, rounds.EventRoundEnded, rounds.EndMessage(j.rec().State, j.rec().Current.Message))
		default:
			return
		}
		if errors.Is(err, errBlocked) {
			return
		}
		if err != nil {
			klog.FromContext(ctx).Error(err, "The job cannot move on; retrying next pass", "state", j.rec().State.String())
			return
		}
	}
}

var errBlocked = errors.New("blocked")

// prepareEval writes the eval samples and asks GM for the eval pod with the train output models.
func (j *job) prepareEval(ctx context.Context) error {
	samples := j.saved.Pools.EvalSamples()
	out := strings.TrimSuffix(j.spec.obj.Spec.OutputDir, "/")
	dataFile := fmt.Sprintf("%s/data/eval/%d/%s", out, j.rec().State.Round, j.dataName())
	message := ""
	if len(samples) == 0 {
		dataFile = j.rec().Current.TrainData
		message = "no evaluation samples (trainProb keeps every sample for training); evaluating on the training data"
	} else if err := j.writeData(dataFile, samples); err != nil {
		j.blocked(ctx, ReasonOutputNotWritable, err)
		return errBlocked
	}
	outputDir := fmt.Sprintf("%s/eval/%d", out, j.rec().State.Round)
	if err := j.mkdir(outputDir); err != nil {
		j.blocked(ctx, ReasonOutputNotWritable, err)
		return errBlocked
	}
	j.unblocked(ctx, ReasonOutputNotWritable)
	models := make([]ModelRef, 0, len(j.rec().Current.TrainModels))
	for _, result := range j.rec().Current.TrainModels {
		format, _ := result["format"].(string)
		url, _ := result["url"].(string)
		models = append(models, ModelRef{Format: format, URL: url})
	}
	report := &StageReport{Input: &StageInput{Models: models, DataURL: dataFile, OutputDir: outputDir}, Message: message}
	return j.transition(ctx, rounds.EventEvalPrepared, func(rec *record) { rec.Current.EvalData = dataFile }, report, nil)
}

func (j *job) deployPath() string {
	return strings.TrimSuffix(j.spec.obj.Spec.OutputDir, "/") + "/" + DeployIndex
}

// deploy copies the round's evaluated KB index to <outputDir>/deploy/index.pkl before GM restarts the
// inference worker (Deploy/Ready). A node that cannot write or reach the KB blocks the round; an
// index this LC must not read ends it undeployed.
func (j *job) deploy(ctx context.Context) error {
	// As upstream, the index deployed is the evaluation's output models[0] (the eval worker may
	// publish the index again with the tasks' metrics), else the one training wrote.
	index := j.rec().Current.Index
	if len(j.rec().Current.EvalModels) > 0 {
		if url, _ := j.rec().Current.EvalModels[0]["url"].(string); url != "" {
			format, _ := j.rec().Current.EvalModels[0]["format"].(string)
			index = &ModelRef{Format: format, URL: url}
		}
	}
	if index == nil || len(j.rec().Current.EvalModels) == 0 {
		return j.closeRound(ctx, rounds.EventDeployTriggerRejected, fmt.Sprintf("round %d not deployed: no trained index or no evaluation output", j.rec().State.Round))
	}
	content, err := j.fetchIndex(ctx, index.URL)
	var refused *refusedError
	if errors.As(err, &refused) {
		return j.closeRound(ctx, rounds.EventDeployTriggerRejected, fmt.Sprintf("round %d not deployed: %v", j.rec().State.Round, err))
	}
	if err != nil {
		j.blocked(ctx, ReasonIndexNotReadable, err)
		return errBlocked
	}
	j.unblocked(ctx, ReasonIndexNotReadable)
	if err := j.writeFile(j.deployPath(), content); err != nil {
		j.blocked(ctx, ReasonDeployNotWritable, err)
		return errBlocked
	}
	j.unblocked(ctx, ReasonDeployNotWritable)
	klog.FromContext(ctx).Info("Deployed the trained index", "round", j.rec().State.Round, "index", index.URL, "bytes", len(content))
	return j.transition(ctx, rounds.EventDeployTriggerPassed, nil,
		&StageReport{Input: &StageInput{Models: []ModelRef{{Format: "pkl", URL: j.deployPath()}}}}, nil)
}

// closeRound ends the round with event, records it in the history and reports Train/Waiting with
// the round's result.
func (j *job) closeRound(ctx context.Context, event rounds.Event, message string) error {
	now := metav1.NewTime(j.m.opts.Now())
	cur := j.rec().Current
	result := sednav1.LearningRound{
		Round: j.rec().State.Round, Stage: cur.FurthestStage, Deployed: cur.Deployed, Message: message,
		StartTime: cur.StartTime, CompletionTime: &now,
	}
	if cur.Index != nil {
		result.Model, result.Format = cur.Index.URL, cur.Index.Format
	}
	return j.transition(ctx, event, func(rec *record) {
		rec.Rounds, rec.Current = rounds.AppendRound(rec.Rounds, result), roundData{}
	}, &StageReport{Message: message, RoundResult: &result}, nil)
}

// observeStatus turns the status GM publishes for the current stage and round into events.
func (j *job) observeStatus(ctx context.Context, status sednav1.LLJobStatus) {
	j.published = status.LearningProgress.DeepCopy()
	current := j.rec().State
	event, ok := rounds.PublishedEvent(status.LearningProgress, current)
	if !ok {
		return
	}
	var report *StageReport
	var mutate func(*record)
	if event == rounds.EventStageFailed {
		message := fmt.Sprintf("round %d: GM reports the %s stage failed", current.Round, current.Stage)
		report = &StageReport{Message: message}
		mutate = func(rec *record) { rec.Current.Message = message }
	}
	if err := j.transition(ctx, event, mutate, report, nil); err != nil {
		klog.FromContext(ctx).Error(err, "Taking the stage state GM published failed", "published", status.StageState)
		return
	}
	j.advance(ctx)
}

// handleWorkerMessage forwards msg to GM and moves the round on with it, all in one save.
func (j *job) handleWorkerMessage(ctx context.Context, msg managers.WorkerMessage) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.deleted || j.spec == nil {
		return fmt.Errorf("%w: lifelong learning job %s/%s is not on this node", managers.ErrInvalidMessage, msg.Namespace, msg.OwnerName)
	}
	forwarded, err := incrementallearning.EncodeForwarded(msg, j.rec().State.Round)
	if err != nil {
		return err
	}
	event, mutate, report, why := j.interpret(msg)
	moved, err := j.saved.TakeWorkerReport(ctx, msg, forwarded, event, mutate, report.Encoder(j.problem), why)
	if err != nil || !moved {
		return err
	}
	j.advance(ctx)
	return nil
}

// interpret maps a worker report to an event of the current stage, the round data it brings and
// the stage report, or to no event with the reason why.
func (j *job) interpret(msg managers.WorkerMessage) (rounds.Event, func(*record), *StageReport, string) {
	event, why := rounds.WorkerEvent(j.key.Name, j.rec().State, msg.Kind, msg.Status, msg.Name)
	if event != rounds.EventWorkerCompleted {
		return event, nil, nil, why
	}
	output := &StageOutput{Models: msg.Results}
	if j.rec().State.Stage == sednav1.StageTrain {
		var url, format string
		if len(msg.Results) > 0 {
			url, _ = msg.Results[0]["url"].(string)
			format, _ = msg.Results[0]["format"].(string)
		}
		if url == "" {
			return j.completedButUnusable("the train worker reported no KB index (results[0].url is empty)", output)
		}
		index := ModelRef{Format: format, URL: url}
		return rounds.EventWorkerCompleted, func(rec *record) {
			rec.Current.Index, rec.Current.TrainModels, rec.LastIndex = &index, msg.Results, &index
		}, &StageReport{Output: output}, ""
	}
	if len(msg.Results) == 0 {
		return j.completedButUnusable("the eval worker reported no models", output)
	}
	return rounds.EventWorkerCompleted, func(rec *record) { rec.Current.EvalModels = msg.Results }, &StageReport{Output: output}, ""
}

// completedButUnusable takes a completion whose results the LC cannot use: the stage completed,
// then fails at once, and the round ends with the problem as its message.
func (j *job) completedButUnusable(problem string, output *StageOutput) (rounds.Event, func(*record), *StageReport, string) {
	message := fmt.Sprintf("round %d: %s", j.rec().State.Round, problem)
	return rounds.EventWorkerCompleted, func(rec *record) {
		rec.State = rounds.FailedAtOnce(rec.State)
		rec.Current.Message = message
	}, &StageReport{Output: output, Message: message}, ""
}
