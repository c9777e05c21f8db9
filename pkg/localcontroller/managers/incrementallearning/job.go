package incrementallearning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/localcontroller/datasetindex"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/internal/jobstate"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers/internal/rounds"
	"github.com/sedna-go/sedna/pkg/localcontroller/storage"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
	"github.com/sedna-go/sedna/pkg/localcontroller/trigger"
)

// jobSpec is a validated job version.
type jobSpec struct {
	obj           *sednav1.IncrementalLearningJob
	trainTrigger  *trigger.Trigger
	deployTrigger *trigger.Trigger
}

func parseJob(obj *sednav1.IncrementalLearningJob) (*jobSpec, error) {
	var problems []error
	if p := obj.Spec.Dataset.TrainProb; !(p > 0 && p <= 1) {
		problems = append(problems, fmt.Errorf("spec.dataset.trainProb %v is not in (0, 1]", p))
	}
	if obj.Spec.Dataset.Name == "" {
		problems = append(problems, errors.New("spec.dataset.name is empty"))
	}
	if isS3(obj.Spec.OutputDir) {
		if _, err := storage.ParseURL(obj.Spec.OutputDir); err != nil {
			problems = append(problems, fmt.Errorf("spec.outputDir: %w", err))
		} else if obj.Spec.CredentialName == "" {
			problems = append(problems, fmt.Errorf("spec.outputDir %s is on S3 but spec.credentialName names no Secret with its credentials", obj.Spec.OutputDir))
		}
	} else if err := checkHostPath(obj.Spec.OutputDir); err != nil {
		problems = append(problems, fmt.Errorf("spec.outputDir: %w", err))
	}
	trainTrigger, err := trigger.New(obj.Spec.TrainSpec.Trigger)
	if err != nil {
		problems = append(problems, fmt.Errorf("spec.trainSpec.trigger: %w", err))
	}
	deployTrigger, err := trigger.New(obj.Spec.DeploySpec.Trigger)
	if err != nil {
		problems = append(problems, fmt.Errorf("spec.deploySpec.trigger: %w", err))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return &jobSpec{obj: obj, trainTrigger: trainTrigger, deployTrigger: deployTrigger}, nil
}

// roundData is what the manager knows about the current round.
type roundData struct {
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// TrainData and EvalData are the host paths of the round's data files.
	TrainData      string `json:"trainData,omitempty"`
	EvalData       string `json:"evalData,omitempty"`
	TrainOutputDir string `json:"trainOutputDir,omitempty"`
	// Base is the model training started from; Trained the model it produced; Old the model the
	// trained one is evaluated against.
	Base    *ModelRef `json:"base,omitempty"`
	Trained *ModelRef `json:"trained,omitempty"`
	Old     *ModelRef `json:"old,omitempty"`
	// TrainResults and EvalResults are the workers' results as reported.
	TrainResults []map[string]any `json:"trainResults,omitempty"`
	EvalResults  []map[string]any `json:"evalResults,omitempty"`
	// Metrics are the deploy trigger's stats: each metric m of the trained model and m_delta.
	Metrics        map[string][]float64 `json:"metrics,omitempty"`
	Deployed       bool                 `json:"deployed,omitempty"`
	Message        string               `json:"message,omitempty"`
	WorkerFailures int                  `json:"workerFailures,omitempty"`
	// FurthestStage is the last stage the round entered.
	FurthestStage sednav1.LearningStage `json:"furthestStage,omitempty"`
}

// samplePools are the samples taken from the dataset index and not yet used up (rounds.Pools):
// the large part of a job's state (a train pool may hold a 64 MiB index), kept as a store blob
// under PoolNamespace, apart from the record, and written only when it changes, so that saving a
// worker report stays a small write.
// Before the split these fields were part of the record, under the same JSON names.
type samplePools = rounds.Pools

// record is a job's persisted state, without its sample pools.
type record struct {
	State   State     `json:"state"`
	Current roundData `json:"current"`
	// LastTrained is the newest trained model: the base of the next round.
	LastTrained *ModelRef `json:"lastTrained,omitempty"`
	// Deployed is the model the LC last deployed: the next rounds are evaluated against it.
	Deployed *ModelRef               `json:"deployed,omitempty"`
	Rounds   []sednav1.LearningRound `json:"rounds,omitempty"`
	// Reports are the pending reports and the last stage report (JSON "pending", "lastReport").
	jobstate.Reports
}

// RoundState is the record's state (jobstate.Record).
func (r *record) RoundState() *State { return &r.State }

// Entered notes the furthest stage the round entered (jobstate.Record).
func (r *record) Entered(stage sednav1.LearningStage) { r.Current.FurthestStage = stage }

// saved is a job's record and sample pools in the LC store.
type saved = jobstate.Saved[record, *record]

// job is one incremental learning job. mu serialises the periodic pass, worker messages and new
// versions from GM, so a transition always starts from the state the last one saved.
type job struct {
	m   *Manager
	key store.ResourceKey

	// published is the progress GM last published with the job (nil: none seen yet).
	published *sednav1.LearningProgress

	mu      sync.Mutex
	spec    *jobSpec
	saved   saved
	deleted bool
	// lastTriggerReason avoids logging the same "not yet" every period.
	lastTriggerReason string
	// problem blocks the current stage (nil: nothing does); a step blocked for its reason is
	// tried again at retryAt, after backoff. clearPending: a problem went away and GM has not
	// had a stage report since. Not persisted: a restarted LC finds the problem again.
	problem      *Problem
	retryAt      time.Time
	backoff      time.Duration
	clearPending bool
}

// rec is the job's saved record.
func (j *job) rec() *record { return &j.saved.Rec }

// pass hands GM what is pending, takes new samples, evaluates the train trigger and moves the
// round on. It returns the period until the next pass.
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
	j.reportClear(ctx)
	return period
}

// transition applies event, lets mutate fill the round data, saves the record with the report
// (if any) and then hands the pending reports to the Reporter. Phase, status and round of the
// report are filled from the new state.
func (j *job) transition(ctx context.Context, event Event, mutate func(*record), report *StageReport) error {
	return j.transitionWithPools(ctx, event, mutate, report, nil)
}

// transitionWithPools is transition that also replaces the sample pools, when pools is not nil,
// in the same store transaction as the record.
func (j *job) transitionWithPools(ctx context.Context, event Event, mutate func(*record), report *StageReport, pools *samplePools) error {
	if err := j.saved.Transition(ctx, event, mutate, report.Encoder(j.problem), pools); err != nil {
		return err
	}
	if report != nil {
		j.clearPending = false
	}
	return nil
}

// takeSamples reads the dataset index and splits the samples added since the last pass: the first
// trainProb of them into the train pool, the rest into a new eval version (as upstream).
func (j *job) takeSamples(ctx context.Context) {
	logger := klog.FromContext(ctx)
	ds, ok := jobstate.Dataset(ctx, j.m.store, j.key.Namespace, j.spec.obj.Spec.Dataset.Name)
	if !ok {
		return
	}
	if !j.mayTry(ReasonDatasetIndexNotReadable) {
		return
	}
	content, err := j.readIndex(ctx, ds)
	if err != nil {
		j.blocked(ctx, ReasonDatasetIndexNotReadable, fmt.Errorf("reading the index of dataset %s: %w", j.spec.obj.Spec.Dataset.Name, err))
		return
	}
	j.unblocked(ctx, ReasonDatasetIndexNotReadable)
	samples := rounds.SplitSamples(content, ds.Spec.Format)
	next, taken := j.saved.Pools.Take(ds.Spec.URL, samples, j.spec.obj.Spec.Dataset.TrainProb)
	if taken.Shrank {
		// Rewritten shorter: what is there now is the new baseline, nothing is new.
		logger.Info("Dataset index shrank; taking only samples appended from now on", "samples", len(samples), "seen", j.saved.Pools.SeenSamples)
		if err := j.saved.SavePools(next); err != nil {
			logger.Error(err, "Saving the job's sample pools failed")
		}
		return
	}
	if taken.Fresh == 0 {
		return
	}
	if err := j.saved.SavePools(next); err != nil {
		logger.Error(err, "Saving the new samples failed; they are taken again next pass")
		return
	}
	logger.V(2).Info("New samples", "new", taken.Fresh, "train", taken.Train, "trainPool", len(next.TrainPool))
}

// readIndex reads the Dataset's index file, a host path or an S3 object (with the Dataset's
// credentials).
func (j *job) readIndex(ctx context.Context, ds *sednav1.Dataset) ([]byte, error) {
	if !isS3(ds.Spec.URL) {
		return j.m.files.readFile(ds.Spec.URL)
	}
	client, err := j.m.s3.client(j.key.Namespace, ds.Spec.CredentialName, ds.Spec.URL, "dataset "+ds.Name)
	if err != nil {
		return nil, err
	}
	return client.ReadFile(ctx, ds.Spec.URL, j.m.opts.MaxIndexBytes)
}

func (j *job) checkTrainTrigger(ctx context.Context) {
	logger := klog.FromContext(ctx)
	obj := j.spec.obj
	initial, ok := j.m.models.Lookup(obj.Namespace, obj.Spec.InitialModel.Name)
	if !ok {
		logger.V(4).Info("Initial model not on this node yet", "model", obj.Spec.InitialModel.Name)
		return
	}
	result, err := j.spec.trainTrigger.Evaluate(j.m.opts.Now(), map[string]any{"num_of_samples": len(j.saved.Pools.TrainPool)})
	if err != nil {
		logger.Error(err, "Evaluating the train trigger failed")
		return
	}
	if !result.Fired {
		if result.Reason != j.lastTriggerReason {
			logger.V(4).Info("Train trigger not fired", "reason", result.Reason)
			j.lastTriggerReason = result.Reason
		}
		return
	}
	round := j.rec().State.Round + 1
	out := strings.TrimSuffix(obj.Spec.OutputDir, "/")
	dataFile := fmt.Sprintf("%s/data/train/%d/data.txt", out, round)
	outputDir := fmt.Sprintf("%s/train/%d", out, round)
	if !j.mayTry(ReasonOutputNotWritable) {
		return
	}
	// Written before the transition: a crash in between only rewrites the same file.
	if err := j.writeData(ctx, dataFile, joinLines(j.saved.Pools.TrainPool)); err != nil {
		j.blocked(ctx, ReasonOutputNotWritable, err)
		return
	}
	if err := j.makeDir(outputDir); err != nil {
		j.blocked(ctx, ReasonOutputNotWritable, err)
		return
	}
	j.unblocked(ctx, ReasonOutputNotWritable)
	base := modelRef(initial)
	message := result.Reason
	if j.rec().LastTrained != nil {
		base = *j.rec().LastTrained
		// The train pod mounts the base model's directory: a symlink swapped in since the model was
		// reported (by the eval pod, say) must not reach it. Training starts again from the
		// initial model instead.
		if err := j.checkMountable(base.URL, ""); err != nil {
			logger.Error(err, "Refusing the last trained model as base; training from the initial model", "model", base.URL)
			base = modelRef(initial)
			message = fmt.Sprintf("%s; the last trained model is refused (%v): training from the initial model", result.Reason, err)
		}
	}
	now := metav1.NewTime(j.m.opts.Now())
	report := &StageReport{
		Input:   &StageInput{Models: []ModelRef{base}, DataURL: dataFile, OutputDir: outputDir},
		Message: message,
	}
	pools := j.saved.Pools
	pools.TrainPool = nil
	err = j.transitionWithPools(ctx, EventTrainTriggerFired, func(rec *record) {
		rec.Current = roundData{StartTime: &now, TrainData: dataFile, TrainOutputDir: outputDir, Base: &base, FurthestStage: sednav1.StageTrain}
	}, report, &pools)
	if err != nil {
		logger.Error(err, "Starting a round failed")
		return
	}
	logger.Info("Train trigger fired; round started", "round", round, "reason", result.Reason)
}

func modelRef(m sednav1.Model) ModelRef {
	return ModelRef{Format: m.Spec.Format, URL: m.Spec.URL, Devices: m.Spec.Devices}
}

func joinLines(lines []string) []byte {
	if len(lines) == 0 {
		return nil
	}
	return []byte(strings.Join(lines, "\n") + "\n")
}

// errBlocked ends advance for a step that is blocked: blocked has logged and reported it.
var errBlocked = errors.New("blocked")

// advance takes the steps the LC makes on its own, until the round waits for someone else.
func (j *job) advance(ctx context.Context) {
	for range 8 {
		var err error
		switch s := j.rec().State; {
		case s.Stage == sednav1.StageTrain && s.StageState == sednav1.StageCompleted:
			err = j.prepareEval(ctx)
		case s.Stage == sednav1.StageEval && s.StageState == sednav1.StageCompleted:
			err = j.transition(ctx, EventEvalDone, nil, &StageReport{})
		case s.Stage == sednav1.StageDeploy && s.StageState == sednav1.StageWaiting:
			err = j.decideDeploy(ctx)
		case s.Stage == sednav1.StageDeploy && s.StageState == sednav1.StageReady:
			err = j.deploy(ctx)
		case s.StageState == sednav1.StageFailed || (s.Stage == sednav1.StageDeploy && s.StageState == sednav1.StageCompleted):
			err = j.endRound(ctx)
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

// oldModel is the model a trained one is compared with: the one the LC deployed last, else the
// eval spec's initial eval model, else the deploy model.
func (j *job) oldModel() (ModelRef, error) {
	if j.rec().Deployed != nil {
		return *j.rec().Deployed, nil
	}
	obj := j.spec.obj
	name := obj.Spec.DeploySpec.Model.Name
	if obj.Spec.EvalSpec.InitialEvalModel != nil && obj.Spec.EvalSpec.InitialEvalModel.Name != "" {
		name = obj.Spec.EvalSpec.InitialEvalModel.Name
	}
	found, ok := j.m.models.Lookup(obj.Namespace, name)
	if !ok {
		return ModelRef{}, fmt.Errorf("model %s/%s to evaluate against is not on this node yet", obj.Namespace, name)
	}
	return modelRef(found), nil
}

func (j *job) prepareEval(ctx context.Context) error {
	old, err := j.oldModel()
	if err != nil {
		return err
	}
	var samples []string
	for _, version := range j.saved.Pools.EvalVersions {
		samples = append(samples, version...)
	}
	dataFile := fmt.Sprintf("%s/data/eval/%d/data.txt", strings.TrimSuffix(j.spec.obj.Spec.OutputDir, "/"), j.rec().State.Round)
	message := ""
	if len(samples) == 0 {
		// trainProb 1 leaves no evaluation samples: the training data is better than nothing.
		dataFile = j.rec().Current.TrainData
		message = "no evaluation samples (trainProb keeps every sample for training); evaluating on the training data"
	} else {
		if !j.mayTry(ReasonOutputNotWritable) {
			return errBlocked
		}
		if err := j.writeData(ctx, dataFile, joinLines(samples)); err != nil {
			j.blocked(ctx, ReasonOutputNotWritable, err)
			return errBlocked
		}
		j.unblocked(ctx, ReasonOutputNotWritable)
	}
	trained := j.trainedFor(old.Format)
	// Checked again right before Eval/Ready: the directory may have changed since the report.
	if err := j.checkMountable(trained.URL, j.rec().Current.TrainOutputDir); err != nil {
		failure := fmt.Sprintf("round %d: the trained model is refused: %v", j.rec().State.Round, err)
		klog.FromContext(ctx).Error(err, "Refusing the trained model", "round", j.rec().State.Round, "model", trained.URL)
		return j.transition(ctx, EventStageFailed, func(rec *record) { rec.Current.Message = failure }, &StageReport{Message: failure})
	}
	report := &StageReport{Input: &StageInput{Models: []ModelRef{trained, old}, DataURL: dataFile}, Message: message}
	return j.transition(ctx, EventEvalPrepared, func(rec *record) {
		rec.Current.EvalData, rec.Current.Old = dataFile, &old
	}, report)
}

func (j *job) decideDeploy(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	stats := make(map[string]any, len(j.rec().Current.Metrics))
	for name, values := range j.rec().Current.Metrics {
		stats[name] = values
	}
	result, err := j.spec.deployTrigger.Evaluate(j.m.opts.Now(), stats)
	if err != nil {
		result = trigger.Result{Reason: fmt.Sprintf("the deploy trigger cannot read the metrics: %v", err)}
	}
	if !result.Fired {
		message := fmt.Sprintf("round %d not deployed: deploy trigger %s not satisfied: %s", j.rec().State.Round, j.spec.deployTrigger, result.Reason)
		logger.Info("Deploy trigger rejected the trained model", "round", j.rec().State.Round, "reason", result.Reason)
		return j.closeRound(ctx, EventDeployTriggerRejected, message)
	}
	target, err := j.deployTarget()
	if err != nil {
		return err
	}
	return j.transition(ctx, EventDeployTriggerPassed, nil, &StageReport{
		Input:   &StageInput{Models: []ModelRef{j.trainedFor(target.Format), target}},
		Message: result.Reason,
	})
}

func (j *job) deployTarget() (ModelRef, error) {
	obj := j.spec.obj
	found, ok := j.m.models.Lookup(obj.Namespace, obj.Spec.DeploySpec.Model.Name)
	if !ok {
		return ModelRef{}, fmt.Errorf("deploy model %s/%s is not on this node yet", obj.Namespace, obj.Spec.DeploySpec.Model.Name)
	}
	return modelRef(found), nil
}

// deploy puts the trained model in place. With hot update the model is copied into the job's
// hot-update directory and model_config.json is rewritten: the round is Deploy/Completed as soon
// as the file is in place, because the inference worker's own kind=deploy report may never come
// (it polls every pollPeriodSeconds and may not run on this node); that report is forwarded to GM.
// Without hot update the model is copied over the deploy Model's URL and GM restarts the
// inference worker on Deploy/Completed.
func (j *job) deploy(ctx context.Context) error {
	trained := *j.rec().Current.Trained
	if target, err := j.deployTarget(); err == nil {
		trained = j.trainedFor(target.Format)
	}
	if !j.mayTry(ReasonDeployNotWritable) {
		return errBlocked
	}
	// The eval pod had the model's directory mounted read-write: a link swapped in since would make
	// the copy read another file below the data roots (Open follows links that stay inside).
	deployErr := j.checkMountable(trained.URL, j.rec().Current.TrainOutputDir)
	if deployErr == nil {
		deployErr = j.putModelInPlace(ctx, trained)
	}
	var notWritable *writeError
	if errors.As(deployErr, &notWritable) {
		// The node, not the model, is the problem: the round waits in Deploy/Ready.
		j.blocked(ctx, ReasonDeployNotWritable, deployErr)
		return errBlocked
	}
	if deployErr == nil {
		j.unblocked(ctx, ReasonDeployNotWritable)
	}
	if deployErr != nil {
		message := fmt.Sprintf("round %d: deploying %s failed: %v", j.rec().State.Round, trained.URL, deployErr)
		return j.transition(ctx, EventDeployFailed, func(rec *record) { rec.Current.Message = message }, &StageReport{Message: message})
	}
	klog.FromContext(ctx).Info("Deployed the trained model", "round", j.rec().State.Round, "model", trained.URL, "hotUpdate", j.spec.obj.Spec.DeploySpec.Model.HotUpdateEnabled)
	return j.transition(ctx, EventModelDeployed, func(rec *record) {
		rec.Current.Deployed = true
		rec.Deployed = &trained
	}, &StageReport{Output: &StageOutput{Models: []map[string]any{{"format": trained.Format, "url": trained.URL}}}})
}

func (j *job) putModelInPlace(ctx context.Context, trained ModelRef) error {
	obj := j.spec.obj
	// The trained model lies under spec.outputDir: the job's credentials read it.
	src, err := j.jobPlace(trained.URL)
	if err != nil {
		return err
	}
	if obj.Spec.DeploySpec.Model.HotUpdateEnabled {
		hostDir := j.m.hotUpdateDir(obj)
		name := baseName(trained.URL)
		if err := j.copyIntoHotUpdateDir(ctx, src, hostDir, name); err != nil {
			return err
		}
		if err := j.m.models.WriteHotUpdateConfig(hostDir, HotUpdateMountPath+"/"+name, j.m.opts.Now()); err != nil {
			return &writeError{path: hostDir, err: err}
		}
		return nil
	}
	target, err := j.deployTarget()
	if err != nil {
		return err
	}
	dst, err := j.modelPlace(obj.Spec.DeploySpec.Model.Name, target.URL)
	if err != nil {
		return &writeError{path: target.URL, err: fmt.Errorf("deploy model URL: %w", err)}
	}
	if dst.client != nil {
		return j.copyModel(ctx, src, dst, nil, "")
	}
	root, rel, err := j.m.files.writeRoot(target.URL)
	if err != nil {
		return fmt.Errorf("deploy model URL: %w", err)
	}
	defer func() { _ = root.Close() }() // a directory handle only
	return j.copyModel(ctx, src, dst, root, rel)
}

func (j *job) copyIntoHotUpdateDir(ctx context.Context, src place, hostDir, name string) error {
	root, err := j.m.models.OpenHotUpdateDir(hostDir)
	if err != nil {
		return &writeError{path: hostDir, err: err}
	}
	defer func() { _ = root.Close() }() // a directory handle only
	return j.copyModel(ctx, src, place{url: hostDir + "/" + name}, root, name)
}

func (j *job) endRound(ctx context.Context) error {
	return j.closeRound(ctx, EventRoundEnded, rounds.EndMessage(j.rec().State, j.rec().Current.Message))
}

// closeRound ends the round with event (RoundEnded or DeployTriggerRejected), records it in the
// history and reports the new Train/Waiting state with the round's result.
func (j *job) closeRound(ctx context.Context, event Event, message string) error {
	now := metav1.NewTime(j.m.opts.Now())
	cur := j.rec().Current
	result := sednav1.LearningRound{
		Round: j.rec().State.Round, Stage: cur.FurthestStage, Deployed: cur.Deployed, Message: message,
		StartTime: cur.StartTime, CompletionTime: &now,
	}
	if cur.Trained != nil {
		result.Model, result.Format = cur.Trained.URL, cur.Trained.Format
	}
	for _, name := range sortedKeys(cur.Metrics) {
		value, err := json.Marshal(cur.Metrics[name])
		if err == nil {
			result.Metrics = append(result.Metrics, sednav1.Metric{Key: name, Value: string(value)})
		}
	}
	return j.transition(ctx, event, func(rec *record) {
		rec.Rounds, rec.Current = rounds.AppendRound(rec.Rounds, result), roundData{}
	}, &StageReport{Message: message, RoundResult: &result})
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	return keys
}

// gmLags reports whether GM's published status misses a report the LC sent (rounds.GMLags).
func gmLags(published sednav1.ILJobStatus, lc State) bool {
	return rounds.GMLags(published.LearningProgress, lc)
}

// observeStatus turns the status GM publishes for the current stage and round into events: GM
// knows when the stage's pod was created, runs, or failed beyond its retries.
func (j *job) observeStatus(ctx context.Context, status sednav1.ILJobStatus) {
	j.published = status.LearningProgress.DeepCopy()
	current := j.rec().State
	event, ok := rounds.PublishedEvent(status.LearningProgress, current)
	if !ok {
		return
	}
	var report *StageReport
	mutate := func(*record) {}
	if event == EventStageFailed {
		message := fmt.Sprintf("round %d: GM reports the %s stage failed", current.Round, current.Stage)
		for _, condition := range status.Conditions {
			if condition.Type == sednav1.ConditionFailed && condition.Message != "" {
				message += ": " + condition.Message
			}
		}
		report = &StageReport{Message: message}
		mutate = func(rec *record) { rec.Current.Message = message }
	}
	if err := j.transition(ctx, event, mutate, report); err != nil {
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
		return fmt.Errorf("%w: incremental learning job %s/%s is not on this node", managers.ErrInvalidMessage, msg.Namespace, msg.OwnerName)
	}
	forwarded, err := encodeForwarded(msg, j.rec().State.Round)
	if err != nil {
		return err
	}
	event, mutate, report, why := j.interpret(msg)
	moved, err := j.saved.TakeWorkerReport(ctx, msg, forwarded, event, mutate, report.Encoder(j.problem), why)
	if err != nil || !moved {
		return err
	}
	if report != nil {
		j.clearPending = false
	}
	j.advance(ctx)
	j.reportClear(ctx)
	return nil
}

// interpret maps a worker report to an event of the current stage, the round data it brings and
// the stage report, or to no event with the reason why.
func (j *job) interpret(msg managers.WorkerMessage) (Event, func(*record), *StageReport, string) {
	event, why := rounds.WorkerEvent(j.key.Name, j.rec().State, msg.Kind, msg.Status, msg.Name)
	switch event {
	case EventWorkerCompleted:
	case EventWorkerFailed:
		return event, func(rec *record) { rec.Current.WorkerFailures++ }, nil, ""
	default:
		return event, nil, nil, why
	}
	output := &StageOutput{Models: msg.Results}
	if j.rec().State.Stage == sednav1.StageTrain {
		trained, problem := j.pickTrained(msg.Results)
		if problem == "" {
			problem = j.checkTrainResults(msg.Results)
		}
		if problem != "" {
			return j.completedButUnusable(problem, output)
		}
		return EventWorkerCompleted, func(rec *record) {
			rec.Current.Trained, rec.Current.TrainResults, rec.LastTrained = &trained, msg.Results, &trained
		}, &StageReport{Output: output}, ""
	}
	metrics, problem := deployStats(msg.Results)
	if problem != "" {
		return j.completedButUnusable(problem, output)
	}
	return EventWorkerCompleted, func(rec *record) {
		rec.Current.EvalResults, rec.Current.Metrics = msg.Results, metrics
	}, &StageReport{Output: output}, ""
}

// completedButUnusable takes a completion whose results the LC cannot use: the stage completed,
// then fails at once (X/Completed + StageFailed), and the round ends with the problem as reason.
func (j *job) completedButUnusable(problem string, output *StageOutput) (Event, func(*record), *StageReport, string) {
	message := fmt.Sprintf("round %d: %s", j.rec().State.Round, problem)
	return EventWorkerCompleted, func(rec *record) {
		rec.State = rounds.FailedAtOnce(rec.State)
		rec.Current.Message = message
	}, &StageReport{Output: output, Message: message}, ""
}

// podRound reads the round out of a stage pod's name (rounds.PodRound).
func podRound(jobName string, stage sednav1.LearningStage, worker string) (int32, bool) {
	return rounds.PodRound(jobName, stage, worker)
}

// trainedFor is the round's trained model in format: a train worker may report several (upstream's
// TensorFlow backend reports the exported .pb and the checkpoint directory), and the model that is
// evaluated against, or deployed as, a Model of one format must be the result in that format. The
// base of the next round stays Current.Trained, the result in the base model's format.
func (j *job) trainedFor(format string) ModelRef {
	for _, result := range j.rec().Current.TrainResults {
		url, _ := result["url"].(string)
		resultFormat, _ := result["format"].(string)
		if url != "" && format != "" && resultFormat == format {
			return ModelRef{Format: resultFormat, URL: url}
		}
	}
	return *j.rec().Current.Trained
}

// pickTrained chooses the trained model among the train worker's results: the first in the base
// model's format, else the first (upstream matched the initial model's format).
func (j *job) pickTrained(results []map[string]any) (ModelRef, string) {
	var models []ModelRef
	for _, result := range results {
		url, _ := result["url"].(string)
		format, _ := result["format"].(string)
		if url != "" {
			models = append(models, ModelRef{Format: format, URL: url})
		}
	}
	if len(models) == 0 {
		return ModelRef{}, "the train worker reported completion without a model url in its results"
	}
	if base := j.rec().Current.Base; base != nil {
		for _, candidate := range models {
			if candidate.Format == base.Format {
				return candidate, ""
			}
		}
	}
	return models[0], ""
}

// checkTrainResults checks every model URL a train worker reported (any of them may be evaluated
// or become a base, see trainedFor) with checkMountable, below the round's train output dir.
func (j *job) checkTrainResults(results []map[string]any) string {
	for _, result := range results {
		url, _ := result["url"].(string)
		if url == "" {
			continue
		}
		if err := j.checkMountable(url, j.rec().Current.TrainOutputDir); err != nil {
			return "the train worker's model is refused: " + err.Error()
		}
	}
	return ""
}

// checkMountable refuses a host-path model URL that GM would turn into a hostPath volume the
// kubelet follows symlinks in: GM mounts path.Dir of the URL (the URL itself when it ends in
// "/") and cannot see the host, so the LC checks, beneath the allowed data root the URL lies
// under, that neither the directory nor the model itself is or goes through a symbolic link
// (a link the train pod created in its output dir would give the next pod the host's "/"). When
// below is a host path, the URL must also lie below it, textually. A missing model is left to
// the worker that reads it; a missing directory is refused. Other URLs (s3://) are mounted by
// nobody and pass.
func (j *job) checkMountable(url, below string) error {
	if !strings.HasPrefix(url, "/") {
		return nil
	}
	if slices.Contains(strings.Split(url, "/"), "..") {
		return fmt.Errorf("model url %q contains a \"..\" element", url)
	}
	clean := path.Clean(url)
	if strings.HasPrefix(below, "/") {
		dir := path.Clean(below)
		if slices.Contains(strings.Split(below, "/"), "..") || !strings.HasPrefix(clean, dir+"/") {
			return fmt.Errorf("model url %s is not below the round's train output dir %s", url, below)
		}
	}
	mounted := path.Dir(clean)
	if strings.HasSuffix(url, "/") {
		mounted = clean
	}
	dir, err := j.m.files.resolver.OpenNoSymlinks(mounted)
	if err != nil {
		return fmt.Errorf("model url %s: the directory mounted for it: %w", url, err)
	}
	_ = dir.Close() // read only
	if mounted == clean {
		return nil
	}
	file, err := j.m.files.resolver.OpenNoSymlinks(clean)
	switch {
	case errors.Is(err, datasetindex.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("model url %s: %w", url, err)
	}
	_ = file.Close() // read only
	return nil
}

// deployStats builds the deploy trigger's stats from the eval worker's results, one per model in
// MODEL_URLS order (trained, then old): each metric m of the trained model as a list, and
// m_delta, element-wise trained minus old, when the old model has the metric with as many
// elements. A scalar metric counts as a list of one.
func deployStats(results []map[string]any) (map[string][]float64, string) {
	if len(results) < 2 {
		return nil, fmt.Sprintf("the eval worker reported %d results; want 2 (trained model, then the model it is compared with)", len(results))
	}
	trained, err := decodeMetrics(results[0]["metrics"])
	if err != nil {
		return nil, fmt.Sprintf("metrics of the trained model: %v", err)
	}
	old, err := decodeMetrics(results[1]["metrics"])
	if err != nil {
		return nil, fmt.Sprintf("metrics of the compared model: %v", err)
	}
	stats := make(map[string][]float64, 2*len(trained))
	for name, values := range trained {
		stats[name] = values
		previous, ok := old[name]
		if !ok || len(previous) != len(values) {
			continue
		}
		delta := make([]float64, len(values))
		for i := range values {
			// Rounded to 12 decimals so reasons read -0.02, not -0.019999999999999907.
			delta[i] = math.Round((values[i]-previous[i])*1e12) / 1e12
		}
		stats[name+"_delta"] = delta
	}
	return stats, ""
}

func decodeMetrics(raw any) (map[string][]float64, error) {
	object, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("metrics is %T, not an object", raw)
	}
	metrics := make(map[string][]float64, len(object))
	for name, value := range object {
		if list, ok := value.([]any); ok {
			values := make([]float64, len(list))
			for i, element := range list {
				number, err := metricNumber(element)
				if err != nil {
					return nil, fmt.Errorf("metric %s[%d]: %w", name, i, err)
				}
				values[i] = number
			}
			metrics[name] = values
			continue
		}
		number, err := metricNumber(value)
		if err != nil {
			return nil, fmt.Errorf("metric %s is not a number or a list of numbers: %w", name, err)
		}
		metrics[name] = []float64{number}
	}
	return metrics, nil
}

// metricNumber reads one metric value: a JSON number as the worker API decodes it (json.Number),
// a float64, or a numeric string (upstream's library sends some metrics as strings).
func metricNumber(value any) (float64, error) {
	switch v := value.(type) {
	case float64:
		return v, nil
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", string(v))
		}
		return f, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", v)
		}
		return f, nil
	}
	return 0, fmt.Errorf("%T is not a number", value)
}
