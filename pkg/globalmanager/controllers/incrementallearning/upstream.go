package incrementallearning

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"k8s.io/klog/v2"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
)

// maxPendingReports bounds the stage reports kept per job between two syncs. The LC sends a
// handful per round; more means GM cannot write the status, and the oldest are dropped.
const maxPendingReports = 64

// modelRef is a model as the LC's stage reports name it (upstream's condition data model).
type modelRef struct {
	Format  string         `json:"format,omitempty"`
	URL     string         `json:"url"`
	Devices []string       `json:"device_soc_versions,omitempty"`
	Metrics map[string]any `json:"metrics,omitempty"`
}

// stageInput is what the stage's pod is to be given.
type stageInput struct {
	Models       []modelRef `json:"models,omitempty"`
	DataURL      string     `json:"dataURL,omitempty"`
	DataIndexURL string     `json:"dataIndexURL,omitempty"`
	OutputDir    string     `json:"outputDir,omitempty"`
}

// problem is what keeps the LC from carrying out its part of the current stage (contract C2):
// a CamelCase reason and a message naming the path and the error.
type problem struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// stageReport is the LC's own report after one of its transitions: the job's new stage, state
// and round, the stage's input and output, why (message), and the closed round's result. A
// report of the current state with a problem says the LC is blocked; the next one without a
// problem says it is not any more.
type stageReport struct {
	Stage       sednav1.LearningStage
	State       sednav1.StageState
	Round       int32
	Input       *stageInput
	Output      json.RawMessage
	Message     string
	RoundResult *sednav1.LearningRound
	Problem     *problem
}

// workerReport is a worker's report the LC relays: it carries "worker".
type workerReport struct {
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
	Input       *stageInput            `json:"input,omitempty"`
	Output      json.RawMessage        `json:"output,omitempty"`
	Message     string                 `json:"message,omitempty"`
	RoundResult *sednav1.LearningRound `json:"roundResult,omitempty"`
	Problem     *problem               `json:"problem,omitempty"`
	Worker      *string                `json:"worker,omitempty"`
}

// parseReport decodes an incrementallearningjob report: either a stage report (nil worker
// report) or a relayed worker report (nil stage report). Phase and status of stage reports are
// matched case-insensitively, as upstream, and must name a stage and a state.
func parseReport(content []byte) (*stageReport, *workerReport, error) {
	var wire wireReport
	if err := json.NewDecoder(bytes.NewReader(content)).Decode(&wire); err != nil {
		return nil, nil, fmt.Errorf("decoding the incremental learning report: %w", err)
	}
	if wire.Worker != nil {
		return nil, &workerReport{Phase: wire.Phase, Status: wire.Status, Worker: *wire.Worker, Round: wire.Round}, nil
	}
	stage, ok := matchFold(wire.Phase, sednav1.StageTrain, sednav1.StageEval, sednav1.StageDeploy)
	if !ok {
		return nil, nil, fmt.Errorf("incremental learning report: phase %q is not a stage", wire.Phase)
	}
	state, ok := matchFold(wire.Status, sednav1.StageWaiting, sednav1.StageReady, sednav1.StageStarting,
		sednav1.StageRunning, sednav1.StageCompleted, sednav1.StageFailed)
	if !ok {
		return nil, nil, fmt.Errorf("incremental learning report: status %q is not a stage state", wire.Status)
	}
	if wire.Round < 0 {
		return nil, nil, fmt.Errorf("incremental learning report: negative round %d", wire.Round)
	}
	if r := wire.RoundResult; r != nil && r.Round < 1 {
		return nil, nil, fmt.Errorf("incremental learning report: round result of round %d", r.Round)
	}
	if p := wire.Problem; p != nil && (p.Reason == "" || !isCamelCase(p.Reason) || len(p.Reason) > 128) {
		return nil, nil, fmt.Errorf("incremental learning report: problem reason %q is not a CamelCase word", p.Reason)
	}
	output := wire.Output
	if bytes.Equal(bytes.TrimSpace(output), []byte("null")) {
		output = nil
	}
	return &stageReport{
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

// ReportKinds implements runtime.ReportReceiver.
func (c *Controller) ReportKinds() []string { return []string{Kind} }

// HandleReport takes an LC report. Stage reports are queued for the job's next sync, in order:
// each may ask for a pod (Ready) or close a round, so none may be lost by coalescing. Relayed
// worker reports only count: the LC already turned them into stage reports.
func (c *Controller) HandleReport(ctx context.Context, node string, key channel.Key, content []byte) error {
	stage, worker, err := parseReport(content)
	if err != nil {
		c.reportMetrics.reports.WithLabelValues("invalid").Inc()
		return err
	}
	logger := klog.FromContext(ctx).WithValues("job", klog.KRef(key.Namespace, key.Name), "node", node)
	if worker != nil {
		c.reportMetrics.reports.WithLabelValues("worker").Inc()
		c.reportMetrics.workerReports.WithLabelValues(boundedLabel(worker.Phase, "train", "eval", "deploy", "inference"),
			boundedLabel(worker.Status, "ready", "running", "completed", "failed")).Inc()
		logger.V(2).Info("Worker report", "worker", worker.Worker, "phase", worker.Phase, "status", worker.Status, "round", worker.Round)
		return nil
	}
	c.reportMetrics.reports.WithLabelValues("stage").Inc()
	nsName := key.Namespace + "/" + key.Name
	c.reportsMu.Lock()
	pending := append(c.pending[nsName], *stage)
	dropped := 0
	if extra := len(pending) - maxPendingReports; extra > 0 {
		dropped, pending = extra, pending[extra:]
	}
	c.pending[nsName] = pending
	c.reportsMu.Unlock()
	logger.V(2).Info("Stage report", "stage", stage.Stage, "state", stage.State, "round", stage.Round)
	c.queue.Add(nsName)
	if dropped > 0 {
		return errors.New("too many stage reports wait for the job's status to be written; the oldest were dropped")
	}
	return nil
}

// boundedLabel keeps metric label values to a known set.
func boundedLabel(value string, known ...string) string {
	value = strings.ToLower(value)
	for _, k := range known {
		if value == k {
			return value
		}
	}
	return "other"
}

// takePending returns the job's queued stage reports; done(n) forgets the first n once they are
// in the status.
func (c *Controller) takePending(key string) []stageReport {
	c.reportsMu.Lock()
	defer c.reportsMu.Unlock()
	return append([]stageReport(nil), c.pending[key]...)
}

func (c *Controller) donePending(key string, n int) {
	c.reportsMu.Lock()
	defer c.reportsMu.Unlock()
	rest := c.pending[key][min(n, len(c.pending[key])):]
	if len(rest) == 0 {
		delete(c.pending, key)
		return
	}
	c.pending[key] = append([]stageReport(nil), rest...)
}

func (c *Controller) forgetPending(key string) {
	c.reportsMu.Lock()
	defer c.reportsMu.Unlock()
	delete(c.pending, key)
}
