package staged

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
)

// MaxPendingReports bounds the stage reports kept per job between two syncs. The LC sends a
// handful per round; more means GM cannot write the status, and the oldest are dropped.
const MaxPendingReports = 64

// ModelRef is a model as the LC's stage reports name it (upstream's condition data model).
type ModelRef struct {
	Format  string         `json:"format,omitempty"`
	URL     string         `json:"url"`
	Devices []string       `json:"device_soc_versions,omitempty"`
	Metrics map[string]any `json:"metrics,omitempty"`
}

// StageInput is what the stage's pod is to be given.
type StageInput struct {
	Models       []ModelRef `json:"models,omitempty"`
	DataURL      string     `json:"dataURL,omitempty"`
	DataIndexURL string     `json:"dataIndexURL,omitempty"`
	OutputDir    string     `json:"outputDir,omitempty"`
}

// Problem is what keeps the LC from carrying out its part of the current stage (contract C2):
// a CamelCase reason and a message naming the path and the error.
type Problem struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// StageReport is the LC's own report after one of its transitions: the job's new stage, state
// and round, the stage's input and output, why (message), and the closed round's result. A
// report of the current state with a problem says the LC is blocked; the next one without a
// problem says it is not any more.
type StageReport struct {
	Stage       sednav1.LearningStage
	State       sednav1.StageState
	Round       int32
	Input       *StageInput
	Output      json.RawMessage
	Message     string
	RoundResult *sednav1.LearningRound
	Problem     *Problem
}

// WorkerReport is a worker's report the LC relays: it carries "worker".
type WorkerReport struct {
	Phase  string
	Status string
	Worker string
	Round  int32
}

// wireReport is both shapes on the wire; "worker" tells them apart.
type wireReport struct {
	Phase       string                 `json:"phase"`
	Status      string                 `json:"status"`
	Round       int32                  `json:"round"`
	Input       *StageInput            `json:"input,omitempty"`
	Output      json.RawMessage        `json:"output,omitempty"`
	Message     string                 `json:"message,omitempty"`
	RoundResult *sednav1.LearningRound `json:"roundResult,omitempty"`
	Problem     *Problem               `json:"problem,omitempty"`
	Worker      *string                `json:"worker,omitempty"`
}

// ParseReport decodes a learning job's report: either a stage report (nil worker report) or a
// relayed worker report (nil stage report). Phase and status of stage reports are matched
// case-insensitively, as upstream, and must name a stage and a state. noun names the job kind in
// errors ("incremental learning").
func ParseReport(noun string, content []byte) (*StageReport, *WorkerReport, error) {
	var wire wireReport
	if err := json.NewDecoder(bytes.NewReader(content)).Decode(&wire); err != nil {
		return nil, nil, fmt.Errorf("decoding the %s report: %w", noun, err)
	}
	if wire.Worker != nil {
		return nil, &WorkerReport{Phase: wire.Phase, Status: wire.Status, Worker: *wire.Worker, Round: wire.Round}, nil
	}
	stage, ok := matchFold(wire.Phase, sednav1.StageTrain, sednav1.StageEval, sednav1.StageDeploy)
	if !ok {
		return nil, nil, fmt.Errorf("%s report: phase %q is not a stage", noun, wire.Phase)
	}
	state, ok := matchFold(wire.Status, sednav1.StageWaiting, sednav1.StageReady, sednav1.StageStarting,
		sednav1.StageRunning, sednav1.StageCompleted, sednav1.StageFailed)
	if !ok {
		return nil, nil, fmt.Errorf("%s report: status %q is not a stage state", noun, wire.Status)
	}
	if wire.Round < 0 {
		return nil, nil, fmt.Errorf("%s report: negative round %d", noun, wire.Round)
	}
	if r := wire.RoundResult; r != nil && r.Round < 1 {
		return nil, nil, fmt.Errorf("%s report: round result of round %d", noun, r.Round)
	}
	if p := wire.Problem; p != nil && (p.Reason == "" || !isCamelCase(p.Reason) || len(p.Reason) > 128) {
		return nil, nil, fmt.Errorf("%s report: problem reason %q is not a CamelCase word", noun, p.Reason)
	}
	output := wire.Output
	if bytes.Equal(bytes.TrimSpace(output), []byte("null")) {
		output = nil
	}
	return &StageReport{
		Stage: stage, State: state, Round: wire.Round, Input: wire.Input, Output: output,
		Message: wire.Message, RoundResult: wire.RoundResult, Problem: wire.Problem,
	}, nil, nil
}

// isCamelCase: a condition reason as metav1.Condition requires it, letters and digits starting
// with a letter.
func isCamelCase(s string) bool {
	for i, r := range s {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

func matchFold[T ~string](s string, values ...T) (T, bool) {
	for _, v := range values {
		if strings.EqualFold(s, string(v)) {
			return v, true
		}
	}
	return "", false
}

// BoundedLabel keeps metric label values to a known set.
func BoundedLabel(value string, known ...string) string {
	value = strings.ToLower(value)
	for _, k := range known {
		if value == k {
			return value
		}
	}
	return "other"
}

// Pending holds the stage reports of each job ("namespace/name") that are not yet in its status,
// in the order the LC sent them: each may ask for a pod (Ready) or close a round, so none may be
// lost by coalescing. The zero value is ready to use.
type Pending struct {
	mu      sync.Mutex
	reports map[string][]StageReport
}

// Add queues a report and returns how many of the oldest were dropped to keep MaxPendingReports.
func (p *Pending) Add(key string, report StageReport) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reports == nil {
		p.reports = map[string][]StageReport{}
	}
	pending := append(p.reports[key], report)
	dropped := 0
	if extra := len(pending) - MaxPendingReports; extra > 0 {
		dropped, pending = extra, pending[extra:]
	}
	p.reports[key] = pending
	return dropped
}

// Take returns a copy of the job's queued reports; Done(key, n) forgets the first n once they
// are in the status.
func (p *Pending) Take(key string) []StageReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]StageReport(nil), p.reports[key]...)
}

// Done forgets the first n queued reports of the job.
func (p *Pending) Done(key string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rest := p.reports[key][min(n, len(p.reports[key])):]
	if len(rest) == 0 {
		delete(p.reports, key)
		return
	}
	p.reports[key] = append([]StageReport(nil), rest...)
}

// Forget drops every queued report of a deleted job.
func (p *Pending) Forget(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.reports, key)
}
