package rounds

import (
	"fmt"
	"strconv"
	"strings"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

// State is where a job's current round is: the stage, the stage's state, and the round number
// (0 before the first train trigger fires).
type State struct {
	Stage      sednav1.LearningStage `json:"stage"`
	StageState sednav1.StageState    `json:"stageState"`
	Round      int32                 `json:"round"`
}

func (s State) String() string {
	return fmt.Sprintf("%s/%s (round %d)", s.Stage, s.StageState, s.Round)
}

// InitialState is the state of a job the LC has never seen: waiting for the first train trigger.
var InitialState = State{Stage: sednav1.StageTrain, StageState: sednav1.StageWaiting}

// Event is what happened to a job. The machine only looks at the event; what it carries (results,
// metrics, reasons) is the manager's business.
type Event string

// Events, with who causes them.
const (
	// EventTrainTriggerFired: the LC's train trigger fired and the round's training data is written.
	EventTrainTriggerFired Event = "TrainTriggerFired"
	// EventStagePodCreated: GM published stageState Starting for the current stage and round.
	EventStagePodCreated Event = "StagePodCreated"
	// EventStagePodStarted: GM published stageState Running, or the worker reported running.
	EventStagePodStarted Event = "StagePodStarted"
	// EventWorkerCompleted: the stage's worker reported status completed with its results.
	EventWorkerCompleted Event = "WorkerCompleted"
	// EventWorkerFailed: the stage's worker reported status failed. GM retries the pod, so the
	// stage goes on; only StageFailed ends it.
	EventWorkerFailed Event = "WorkerFailed"
	// EventStageFailed: GM published stageState Failed for the current stage and round (the pod
	// failed beyond its retries), or the LC could not prepare the stage.
	EventStageFailed Event = "StageFailed"
	// EventEvalPrepared: after training, the LC wrote the evaluation data and asks GM for the eval pod.
	EventEvalPrepared Event = "EvalPrepared"
	// EventEvalDone: the LC took the evaluation metrics; the deploy trigger is evaluated next.
	EventEvalDone Event = "EvalDone"
	// EventDeployTriggerPassed: the deploy trigger holds for the metrics.
	EventDeployTriggerPassed Event = "DeployTriggerPassed"
	// EventDeployTriggerRejected: the deploy trigger does not hold; the round ends undeployed.
	EventDeployTriggerRejected Event = "DeployTriggerRejected"
	// EventModelDeployed: the LC put the trained model in place (hot-update file or deploy URL).
	EventModelDeployed Event = "ModelDeployed"
	// EventDeployFailed: putting the model in place failed.
	EventDeployFailed Event = "DeployFailed"
	// EventRoundEnded: a completed or failed round is closed; the next one waits for data.
	EventRoundEnded Event = "RoundEnded"
)

// Events lists every event, for exhaustive tests and documentation.
var Events = []Event{
	EventTrainTriggerFired, EventStagePodCreated, EventStagePodStarted, EventWorkerCompleted,
	EventWorkerFailed, EventStageFailed, EventEvalPrepared, EventEvalDone, EventDeployTriggerPassed,
	EventDeployTriggerRejected, EventModelDeployed, EventDeployFailed, EventRoundEnded,
}

// Stages and StageStates list the state space.
var (
	Stages      = []sednav1.LearningStage{sednav1.StageTrain, sednav1.StageEval, sednav1.StageDeploy}
	StageStates = []sednav1.StageState{
		sednav1.StageWaiting, sednav1.StageReady, sednav1.StageStarting,
		sednav1.StageRunning, sednav1.StageCompleted, sednav1.StageFailed,
	}
)

// phase is the (stage, stageState) part of a State: the round number never decides a transition.
type phase struct {
	stage sednav1.LearningStage
	state sednav1.StageState
}

type transitionKey struct {
	from  phase
	event Event
}

// transition is one row of the table: the phase it leads to and whether it starts a new round.
type transition struct {
	to       phase
	newRound bool
}

var (
	trainWaiting    = phase{sednav1.StageTrain, sednav1.StageWaiting}
	trainReady      = phase{sednav1.StageTrain, sednav1.StageReady}
	trainStarting   = phase{sednav1.StageTrain, sednav1.StageStarting}
	trainRunning    = phase{sednav1.StageTrain, sednav1.StageRunning}
	trainCompleted  = phase{sednav1.StageTrain, sednav1.StageCompleted}
	trainFailed     = phase{sednav1.StageTrain, sednav1.StageFailed}
	evalReady       = phase{sednav1.StageEval, sednav1.StageReady}
	evalStarting    = phase{sednav1.StageEval, sednav1.StageStarting}
	evalRunning     = phase{sednav1.StageEval, sednav1.StageRunning}
	evalCompleted   = phase{sednav1.StageEval, sednav1.StageCompleted}
	evalFailed      = phase{sednav1.StageEval, sednav1.StageFailed}
	deployWaiting   = phase{sednav1.StageDeploy, sednav1.StageWaiting}
	deployReady     = phase{sednav1.StageDeploy, sednav1.StageReady}
	deployCompleted = phase{sednav1.StageDeploy, sednav1.StageCompleted}
	deployFailed    = phase{sednav1.StageDeploy, sednav1.StageFailed}
)

// table is the whole state machine: for each (phase, event) the next phase. A pair that is not
// here is not allowed. Eval/Waiting and Deploy/Starting|Running are never entered: the LC moves
// from Train/Completed straight to Eval/Ready once the eval data is written, and deploys by
// itself (hot update or copying the model), without a deploy pod to wait for.
var table = map[transitionKey]transition{
	{trainWaiting, EventTrainTriggerFired}: {to: trainReady, newRound: true},

	{trainReady, EventStagePodCreated}:    {to: trainStarting},
	{trainReady, EventStagePodStarted}:    {to: trainRunning},
	{trainStarting, EventStagePodStarted}: {to: trainRunning},
	{trainReady, EventWorkerCompleted}:    {to: trainCompleted},
	{trainStarting, EventWorkerCompleted}: {to: trainCompleted},
	{trainRunning, EventWorkerCompleted}:  {to: trainCompleted},
	{trainReady, EventWorkerFailed}:       {to: trainReady},
	{trainStarting, EventWorkerFailed}:    {to: trainStarting},
	{trainRunning, EventWorkerFailed}:     {to: trainRunning},
	{trainReady, EventStageFailed}:        {to: trainFailed},
	{trainStarting, EventStageFailed}:     {to: trainFailed},
	{trainRunning, EventStageFailed}:      {to: trainFailed},
	{trainCompleted, EventEvalPrepared}:   {to: evalReady},
	{trainCompleted, EventStageFailed}:    {to: trainFailed},

	{evalReady, EventStagePodCreated}:    {to: evalStarting},
	{evalReady, EventStagePodStarted}:    {to: evalRunning},
	{evalStarting, EventStagePodStarted}: {to: evalRunning},
	{evalReady, EventWorkerCompleted}:    {to: evalCompleted},
	{evalStarting, EventWorkerCompleted}: {to: evalCompleted},
	{evalRunning, EventWorkerCompleted}:  {to: evalCompleted},
	{evalReady, EventWorkerFailed}:       {to: evalReady},
	{evalStarting, EventWorkerFailed}:    {to: evalStarting},
	{evalRunning, EventWorkerFailed}:     {to: evalRunning},
	{evalReady, EventStageFailed}:        {to: evalFailed},
	{evalStarting, EventStageFailed}:     {to: evalFailed},
	{evalRunning, EventStageFailed}:      {to: evalFailed},
	{evalCompleted, EventEvalDone}:       {to: deployWaiting},
	{evalCompleted, EventStageFailed}:    {to: evalFailed},

	{deployWaiting, EventDeployTriggerPassed}:   {to: deployReady},
	{deployWaiting, EventDeployTriggerRejected}: {to: trainWaiting},
	{deployReady, EventModelDeployed}:           {to: deployCompleted},
	{deployReady, EventDeployFailed}:            {to: deployFailed},
	{deployReady, EventStageFailed}:             {to: deployFailed},

	{deployCompleted, EventRoundEnded}: {to: trainWaiting},
	{trainFailed, EventRoundEnded}:     {to: trainWaiting},
	{evalFailed, EventRoundEnded}:      {to: trainWaiting},
	{deployFailed, EventRoundEnded}:    {to: trainWaiting},
}

// Next returns the state after event happens in state, or an error naming both when the event is
// not allowed there. Only TrainTriggerFired changes the round (it starts the next one).
func Next(state State, event Event) (State, error) {
	row, ok := table[transitionKey{from: phase{state.Stage, state.StageState}, event: event}]
	if !ok {
		return state, fmt.Errorf("event %s is not allowed in state %s/%s", event, state.Stage, state.StageState)
	}
	next := State{Stage: row.to.stage, StageState: row.to.state, Round: state.Round}
	if row.newRound {
		next.Round++
	}
	return next, nil
}

// Allowed says whether event may happen in state.
func Allowed(state State, event Event) bool {
	_, ok := table[transitionKey{from: phase{state.Stage, state.StageState}, event: event}]
	return ok
}

// TableRow is one transition, for documentation and tests.
type TableRow struct {
	From, To State
	Event    Event
	NewRound bool
}

// Table returns every allowed transition (round numbers left at 0).
func Table() []TableRow {
	rows := make([]TableRow, 0, len(table))
	for key, row := range table {
		rows = append(rows, TableRow{
			From:     State{Stage: key.from.stage, StageState: key.from.state},
			To:       State{Stage: row.to.stage, StageState: row.to.state},
			Event:    key.event,
			NewRound: row.newRound,
		})
	}
	return rows
}

// StageOrder ranks the stages within a round.
func StageOrder(stage sednav1.LearningStage) int {
	switch stage {
	case sednav1.StageEval:
		return 2
	case sednav1.StageDeploy:
		return 3
	}
	return 1
}

// GMLags reports whether GM's published status misses a report the LC sent: an older round, an
// earlier stage, a stage GM still has Waiting that the LC made Ready or later, or a round the LC
// ended (Train/Waiting) that GM still shows in progress.
func GMLags(published sednav1.LearningProgress, lc State) bool {
	if lc.Round == 0 {
		return false
	}
	if published.Round != lc.Round {
		return published.Round < lc.Round
	}
	if lc.Stage == sednav1.StageTrain && lc.StageState == sednav1.StageWaiting {
		return published.Stage != sednav1.StageTrain || published.StageState != sednav1.StageWaiting
	}
	if published.Stage != lc.Stage {
		return StageOrder(published.Stage) < StageOrder(lc.Stage)
	}
	return published.StageState == sednav1.StageWaiting || published.StageState == ""
}

// PodRound reads the round out of a stage pod's name, which GM gives its workers as WORKER_NAME:
// <job>-<stage>-<round>, or <job>-<stage>-<round>-<attempt> for a retry. A late report of an
// earlier round's pod must not drive the current round. Other names (upstream's random worker
// names) carry no round.
func PodRound(jobName string, stage sednav1.LearningStage, worker string) (int32, bool) {
	rest, ok := strings.CutPrefix(worker, jobName+"-"+strings.ToLower(string(stage))+"-")
	if !ok {
		return 0, false
	}
	number, _, _ := strings.Cut(rest, "-")
	round, err := strconv.ParseInt(number, 10, 32)
	if err != nil || round < 1 {
		return 0, false
	}
	return int32(round), true
}
