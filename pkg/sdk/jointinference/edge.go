package jointinference

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/hem"
)

// DefaultCloudDeadline bounds one cloud round trip. Upstream retries 5×3 s,
// which can hold a request for 15 s; an edge answering a camera frame has a
// far shorter budget.
const DefaultCloudDeadline = 5 * time.Second

// maxCloudResponseBytes bounds how much of a cloud answer the edge reads.
const maxCloudResponseBytes = 64 << 20

// EdgePrediction is the little model's answer.
type EdgePrediction struct {
	// Result is returned to the caller when the sample is easy or the cloud
	// cannot help.
	Result any
	// Mining is the view of Result that the miner judges.
	Mining hem.Inference
}

// EdgeModel is the user's little model.
type EdgeModel interface {
	Predict(ctx context.Context, data any) (EdgePrediction, error)
}

// EdgeModelFunc adapts a function to EdgeModel.
type EdgeModelFunc func(ctx context.Context, data any) (EdgePrediction, error)

// Predict implements EdgeModel.
func (f EdgeModelFunc) Predict(ctx context.Context, data any) (EdgePrediction, error) {
	return f(ctx, data)
}

// EdgeOptions configures an Edge.
type EdgeOptions struct {
	// Job is the cloud URL path segment (JOB_NAME).
	Job string
	// CloudURL is the cloud server's base, http://BIG_MODEL_IP:BIG_MODEL_PORT.
	CloudURL string
	// Model is the little model.
	Model EdgeModel
	// Miner decides which samples go to the cloud.
	Miner hem.Miner
	// MiningMode is env.MiningInferenceThenMining (default) or
	// env.MiningThenInference.
	MiningMode string
	// MineInput turns the raw input into something the miner can judge; it
	// is required for mining-then-inference, where no model has run yet.
	MineInput func(data any) (hem.Inference, error)
	// CloudDeadline bounds a cloud round trip; 0 means DefaultCloudDeadline.
	CloudDeadline time.Duration
	// HTTPClient defaults to http.DefaultClient; the deadline is applied per
	// request through the context.
	HTTPClient *http.Client
}

// Result is one joint inference, upstream's [is_hard, result, edge_result,
// cloud_result] plus why the cloud was not used.
type Result struct {
	IsHard bool
	// Result is the cloud's answer when it was asked and answered, else the
	// edge's.
	Result any
	// EdgeResult is nil when mining-then-inference sent the sample straight
	// to the cloud and the cloud answered.
	EdgeResult any
	// CloudResult is the raw "result" of the cloud, nil when not asked or
	// when it failed.
	CloudResult json.RawMessage
	// CloudErr says why a hard example fell back to the edge.
	CloudErr error
}

// FellBack reports whether a hard example was answered by the edge.
func (r Result) FellBack() bool { return r.CloudErr != nil }

// Stats are the edge's cumulative counters.
type Stats struct {
	InferenceNumber   int64
	HardExampleNumber int64
	Fallbacks         int64
}

// UploadCloudRatio is the share of inferences mined as hard, as upstream
// defines it (hard examples, not successful uploads).
func (s Stats) UploadCloudRatio() float64 {
	if s.InferenceNumber == 0 {
		return 0
	}
	return float64(s.HardExampleNumber) / float64(s.InferenceNumber)
}

// Edge runs joint inference on the edge. It is safe for concurrent use.
type Edge struct {
	predictURL string
	model      EdgeModel
	miner      hem.Miner
	mode       string
	mineInput  func(data any) (hem.Inference, error)
	deadline   time.Duration
	http       *http.Client

	mu    sync.Mutex
	stats Stats
	// pending counts inferences since the last report, so the reporter stays
	// quiet when nothing happened, as upstream's period_increment does.
	pending int64
}

// NewEdge validates opts.
func NewEdge(opts EdgeOptions) (*Edge, error) {
	if opts.Job == "" || strings.Contains(opts.Job, "/") {
		return nil, fmt.Errorf("creating joint inference edge: job name %q must be one non-empty path segment", opts.Job)
	}
	if opts.Model == nil || opts.Miner == nil {
		return nil, errors.New("creating joint inference edge: a Model and a Miner are required")
	}
	base, err := url.Parse(strings.TrimRight(opts.CloudURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("creating joint inference edge: parsing cloud URL %q: %w", opts.CloudURL, err)
	}
	if base.Scheme != "http" && base.Scheme != "https" || base.Hostname() == "" {
		return nil, fmt.Errorf("creating joint inference edge: cloud URL %q is not an http(s) URL with a host (is BIG_MODEL_IP set?)", opts.CloudURL)
	}
	edge := &Edge{
		predictURL: base.JoinPath(opts.Job, "predict").String(),
		model:      opts.Model,
		miner:      opts.Miner,
		mode:       opts.MiningMode,
		mineInput:  opts.MineInput,
		deadline:   opts.CloudDeadline,
		http:       opts.HTTPClient,
	}
	switch edge.mode {
	case "":
		edge.mode = env.MiningInferenceThenMining
	case env.MiningInferenceThenMining:
	case env.MiningThenInference:
		if edge.mineInput == nil {
			return nil, errors.New("creating joint inference edge: mining-then-inference needs MineInput to judge raw inputs")
		}
	default:
		return nil, fmt.Errorf("creating joint inference edge: unknown mining mode %q", edge.mode)
	}
	if edge.deadline <= 0 {
		edge.deadline = DefaultCloudDeadline
	}
	if edge.http == nil {
		edge.http = http.DefaultClient
	}
	return edge, nil
}

// CloudPredictURL is where hard examples are sent.
func (e *Edge) CloudPredictURL() string { return e.predictURL }

// Infer runs one joint inference. Cloud failures are not errors: they are
// reported in Result.CloudErr and counted as fallbacks. Errors are the edge
// model's or the miner's, or ctx ending.
func (e *Edge) Infer(ctx context.Context, data any) (Result, error) {
	if e.mode == env.MiningThenInference {
		return e.mineThenInfer(ctx, data)
	}
	prediction, err := e.model.Predict(ctx, data)
	if err != nil {
		return Result{}, fmt.Errorf("running the edge model: %w", err)
	}
	result := Result{Result: prediction.Result, EdgeResult: prediction.Result}
	result.IsHard, err = e.miner.IsHard(prediction.Mining)
	if err != nil {
		return result, fmt.Errorf("mining the edge result: %w", err)
	}
	if result.IsHard {
		if err := e.askCloud(ctx, data, &result); err != nil {
			return result, err
		}
	}
	e.count(result)
	return result, nil
}

func (e *Edge) mineThenInfer(ctx context.Context, data any) (Result, error) {
	mining, err := e.mineInput(data)
	if err != nil {
		return Result{}, fmt.Errorf("preparing the input for mining: %w", err)
	}
	var result Result
	result.IsHard, err = e.miner.IsHard(mining)
	if err != nil {
		return Result{}, fmt.Errorf("mining the input: %w", err)
	}
	if result.IsHard {
		if err := e.askCloud(ctx, data, &result); err != nil {
			return result, err
		}
		if !result.FellBack() {
			e.count(result)
			return result, nil
		}
	}
	prediction, err := e.model.Predict(ctx, data)
	if err != nil {
		return result, fmt.Errorf("running the edge model: %w", err)
	}
	result.Result, result.EdgeResult = prediction.Result, prediction.Result
	e.count(result)
	return result, nil
}

// askCloud fills in the cloud's answer, or CloudErr when the edge must answer
// itself. It returns an error only when the caller's ctx ended, which is not
// the cloud's fault and must not be counted as a fallback.
func (e *Edge) askCloud(ctx context.Context, data any, result *Result) error {
	cloudResult, err := e.callCloud(ctx, data)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("asking the cloud model: %w", ctxErr)
	}
	if err != nil {
		klog.FromContext(ctx).V(2).Info("Cloud model unavailable, answering from the edge", "url", e.predictURL, "err", err)
		result.CloudErr = err
		return nil
	}
	result.CloudResult = cloudResult
	result.Result = cloudResult
	return nil
}

func (e *Edge) callCloud(ctx context.Context, data any) (json.RawMessage, error) {
	body, err := json.Marshal(struct {
		Data any `json:"data"`
	}{Data: data})
	if err != nil {
		return nil, fmt.Errorf("encoding the cloud request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, e.deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.predictURL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building the cloud request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("posting to the cloud model within %s: %w", e.deadline, err)
	}
	defer func() { _ = resp.Body.Close() }() // the answer has been read; nothing to do with a close error
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxCloudResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("reading the cloud answer within %s: %w", e.deadline, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cloud model answered %d %s: %s", resp.StatusCode, http.StatusText(resp.StatusCode), strings.TrimSpace(string(answer)))
	}
	var decoded struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(answer, &decoded); err != nil {
		return nil, fmt.Errorf("cloud answer is not JSON {\"result\":...}: %w", err)
	}
	if len(decoded.Result) == 0 {
		return nil, errors.New(`cloud answer has no "result"`)
	}
	return decoded.Result, nil
}

func (e *Edge) count(result Result) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats.InferenceNumber++
	e.pending++
	if result.IsHard {
		e.stats.HardExampleNumber++
	}
	if result.FellBack() {
		e.stats.Fallbacks++
	}
}

// Stats returns a snapshot of the cumulative counters.
func (e *Edge) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}
