package incrementallearning

import "github.com/sedna-go/sedna/pkg/localcontroller/managers/internal/rounds"

// The rounds follow the state machine the learning managers share (package rounds).
type (
	// State is where a job's current round is.
	State = rounds.State
	// Event is what happened to a job.
	Event = rounds.Event
)

// Events of the shared state machine.
const (
	EventTrainTriggerFired     = rounds.EventTrainTriggerFired
	EventStagePodCreated       = rounds.EventStagePodCreated
	EventStagePodStarted       = rounds.EventStagePodStarted
	EventWorkerCompleted       = rounds.EventWorkerCompleted
	EventWorkerFailed          = rounds.EventWorkerFailed
	EventStageFailed           = rounds.EventStageFailed
	EventEvalPrepared          = rounds.EventEvalPrepared
	EventEvalDone              = rounds.EventEvalDone
	EventDeployTriggerPassed   = rounds.EventDeployTriggerPassed
	EventDeployTriggerRejected = rounds.EventDeployTriggerRejected
	EventModelDeployed         = rounds.EventModelDeployed
	EventDeployFailed          = rounds.EventDeployFailed
	EventRoundEnded            = rounds.EventRoundEnded
)

// InitialState is the state of a job the LC has never seen.
var InitialState = rounds.InitialState

// Next returns the state after event happens in state (rounds.Next).
func Next(state State, event Event) (State, error) { return rounds.Next(state, event) }

// Allowed says whether event may happen in state.
func Allowed(state State, event Event) bool { return rounds.Allowed(state, event) }
