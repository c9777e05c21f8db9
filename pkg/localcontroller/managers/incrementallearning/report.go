package incrementallearning

import (
	"encoding/json"
	"fmt"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
)

// ModelRef is a model as upstream's condition data names it.
type ModelRef struct {
	Format  string         `json:"format"`
	URL     string         `json:"url"`
	Devices []string       `json:"device_soc_versions,omitempty"`
	Metrics map[string]any `json:"metrics,omitempty"`
}

// StageInput is upstream's input of a stage: what GM passes to the stage's pod.
type StageInput struct {
	Models       []ModelRef `json:"models,omitempty"`
	DataURL      string     `json:"dataURL,omitempty"`
	DataIndexURL string     `json:"dataIndexURL,omitempty"`
	OutputDir    string     `json:"outputDir,omitempty"`
}

// StageOutput is upstream's output of a stage: the worker's results.
type StageOutput struct {
	Models []map[string]any `json:"models,omitempty"`
}

// StageReport is the content of the LC's report to GM after a transition. Phase, Status, Input
// and Output are upstream's LC stage message; Round, Message, RoundResult and Problem are ours:
// Round is the round the state belongs to, Message says why (a failure, a rejected deploy),
// RoundResult is set on the report that closes a round (the state is then Train/Waiting), and
// Problem says what blocks the stage.
type StageReport struct {
	Phase       string                 `json:"phase"`
	Status      string                 `json:"status"`
	Round       int32                  `json:"round"`
	Input       *StageInput            `json:"input,omitempty"`
	Output      *StageOutput           `json:"output"`
	Message     string                 `json:"message,omitempty"`
	RoundResult *sednav1.LearningRound `json:"roundResult,omitempty"`
	// Problem, when set, is what keeps the LC from carrying out its part of the current stage
	// (the job is Stalled); a stage report without it means nothing does any more.
	Problem *Problem `json:"problem,omitempty"`
}

// Encode fills phase, status and round from state and sets problem (the job's current one: a
// problem not yet solved stays on every stage report, so GM keeps the job Stalled; a report
// without one clears it), then encodes the report.
func (r *StageReport) Encode(state State, problem *Problem) ([]byte, error) {
	r.Phase, r.Status, r.Round = string(state.Stage), string(state.StageState), state.Round
	r.Problem = problem
	return json.Marshal(r)
}

// Encoder is Encode with problem for jobstate.Saved.Transition; nil for no report.
func (r *StageReport) Encoder(problem *Problem) func(State) ([]byte, error) {
	if r == nil {
		return nil
	}
	return func(state State) ([]byte, error) { return r.Encode(state, problem) }
}

// EncodeStateReport encodes a stage report of state unchanged (GM takes no transition from it)
// carrying problem, if any, also as its message. It is never LastReport: sending it again later
// would repeat a problem that may be gone.
func EncodeStateReport(state State, problem *Problem) ([]byte, error) {
	report := StageReport{Phase: string(state.Stage), Status: string(state.StageState), Round: state.Round, Problem: problem}
	if problem != nil {
		report.Message = problem.Message
	}
	return json.Marshal(report)
}

// ForwardedReport is a worker report relayed to GM: upstream's forwarded shape
// {"phase":<kind>,"status":<status>,"output":{"models","ownerInfo"}} plus the worker's name and the
// round the LC attributes it to, which tell GM it is a worker's word and not a stage report.
type ForwardedReport struct {
	Phase  string          `json:"phase"`
	Status string          `json:"status"`
	Output forwardedOutput `json:"output"`
	Worker string          `json:"worker"`
	Round  int32           `json:"round"`
}

type forwardedOutput struct {
	Models    []map[string]any `json:"models"`
	OwnerInfo map[string]any   `json:"ownerInfo"`
}

func encodeForwarded(msg managers.WorkerMessage, round int32) ([]byte, error) {
	content, err := json.Marshal(ForwardedReport{
		Phase: msg.Kind, Status: msg.Status, Worker: msg.Name, Round: round,
		Output: forwardedOutput{Models: msg.Results, OwnerInfo: msg.OwnerInfo},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the report of worker %s for GM: %w", managers.ErrInvalidMessage, msg.Name, err)
	}
	return content, nil
}

// EncodeForwarded is the relayed form of a worker report attributed to round, for the learning
// managers that share these reports.
func EncodeForwarded(msg managers.WorkerMessage, round int32) ([]byte, error) {
	return encodeForwarded(msg, round)
}
