package jointinference

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/hem"
)

// fakeCloud records predict bodies and answers per its mode.
type fakeCloud struct {
	mode     string // "ok", "500", "slow", "no-result"
	mu       sync.Mutex
	requests []string
}

func (c *fakeCloud) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.requests = append(c.requests, r.Method+" "+r.URL.Path+" "+string(body))
	c.mu.Unlock()
	switch c.mode {
	case "500":
		http.Error(w, `{"error":"predicting: out of memory"}`, http.StatusInternalServerError)
	case "slow":
		// Hold the request until the edge gives up (or a safety timeout).
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		_, _ = w.Write([]byte(`{"result":"late"}`))
	case "no-result":
		_, _ = w.Write([]byte(`{"answer":1}`))
	default:
		_, _ = w.Write([]byte(`{"result":{"label":"cloud-cat"}}`))
	}
}

func (c *fakeCloud) seen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string{}, c.requests...)
}

// scoredModel answers "edge-<input>" with one box scored by the input's
// "score" field, so the Threshold miner's verdict is chosen per test.
type scoredModel struct{ calls atomic.Int64 }

func (m *scoredModel) Predict(_ context.Context, data any) (EdgePrediction, error) {
	m.calls.Add(1)
	input, ok := data.(map[string]any)
	if !ok {
		return EdgePrediction{}, errors.New("input is not an object")
	}
	score, _ := input["score"].(float64)
	return EdgePrediction{
		Result: map[string]any{"label": "edge-cat", "score": score},
		Mining: hem.Inference{Boxes: []hem.Box{{X2: 1, Y2: 1, Score: score}}},
	}, nil
}

func TestEdgeInfer(t *testing.T) {
	tests := map[string]struct {
		cloudMode   string
		cloudDown   bool
		score       float64
		wantHard    bool
		wantResult  any
		wantCloud   string
		wantErrText string // in Result.CloudErr
		wantStats   Stats
		wantCalls   int
	}{
		"easy stays on the edge": {
			cloudMode: "ok", score: 0.9,
			wantResult: map[string]any{"label": "edge-cat", "score": 0.9},
			wantStats:  Stats{InferenceNumber: 1}, wantCalls: 0,
		},
		"hard goes to the cloud": {
			cloudMode: "ok", score: 0.2, wantHard: true,
			wantResult: json.RawMessage(`{"label":"cloud-cat"}`), wantCloud: `{"label":"cloud-cat"}`,
			wantStats: Stats{InferenceNumber: 1, HardExampleNumber: 1}, wantCalls: 1,
		},
		"cloud down falls back": {
			cloudDown: true, score: 0.2, wantHard: true,
			wantResult:  map[string]any{"label": "edge-cat", "score": 0.2},
			wantErrText: "posting to the cloud model",
			wantStats:   Stats{InferenceNumber: 1, HardExampleNumber: 1, Fallbacks: 1},
		},
		"cloud error falls back": {
			cloudMode: "500", score: 0.2, wantHard: true,
			wantResult:  map[string]any{"label": "edge-cat", "score": 0.2},
			wantErrText: `cloud model answered 500 Internal Server Error: {"error":"predicting: out of memory"}`,
			wantStats:   Stats{InferenceNumber: 1, HardExampleNumber: 1, Fallbacks: 1}, wantCalls: 1,
		},
		"cloud without result falls back": {
			cloudMode: "no-result", score: 0.2, wantHard: true,
			wantResult:  map[string]any{"label": "edge-cat", "score": 0.2},
			wantErrText: `cloud answer has no "result"`,
			wantStats:   Stats{InferenceNumber: 1, HardExampleNumber: 1, Fallbacks: 1}, wantCalls: 1,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cloud := &fakeCloud{mode: tc.cloudMode}
			server := httptest.NewServer(cloud)
			if tc.cloudDown {
				server.Close()
			} else {
				defer server.Close()
			}
			edge, err := NewEdge(EdgeOptions{
				Job: "sedna", CloudURL: server.URL, Model: &scoredModel{},
				Miner: &hem.Threshold{Threshold: 0.5}, CloudDeadline: 2 * time.Second,
			})
			require.NoError(t, err)

			result, err := edge.Infer(context.Background(), map[string]any{"score": tc.score})
			require.NoError(t, err)
			require.Equal(t, tc.wantHard, result.IsHard)
			require.Equal(t, tc.wantResult, result.Result)
			require.Equal(t, map[string]any{"label": "edge-cat", "score": tc.score}, result.EdgeResult)
			if tc.wantCloud == "" {
				require.Nil(t, result.CloudResult)
			} else {
				require.JSONEq(t, tc.wantCloud, string(result.CloudResult))
			}
			if tc.wantErrText == "" {
				require.NoError(t, result.CloudErr)
				require.False(t, result.FellBack())
			} else {
				require.ErrorContains(t, result.CloudErr, tc.wantErrText)
				require.True(t, result.FellBack())
			}
			require.Equal(t, tc.wantStats, edge.Stats())
			requests := cloud.seen()
			require.Len(t, requests, tc.wantCalls)
			if tc.wantCalls > 0 {
				require.Equal(t, `POST /sedna/predict {"data":{"score":0.2}}`, requests[0])
			}
		})
	}
}

func TestEdgeSlowCloudFallsBackAfterDeadline(t *testing.T) {
	cloud := &fakeCloud{mode: "slow"}
	server := httptest.NewServer(cloud)
	defer server.Close()
	edge, err := NewEdge(EdgeOptions{
		Job: "sedna", CloudURL: server.URL, Model: &scoredModel{},
		Miner: hem.Constant(true), CloudDeadline: 50 * time.Millisecond,
	})
	require.NoError(t, err)

	started := time.Now()
	result, err := edge.Infer(context.Background(), map[string]any{"score": 0.9})
	elapsed := time.Since(started)
	require.NoError(t, err)
	require.ErrorIs(t, result.CloudErr, context.DeadlineExceeded)
	require.Equal(t, map[string]any{"label": "edge-cat", "score": 0.9}, result.Result)
	require.GreaterOrEqual(t, elapsed, 50*time.Millisecond)
	require.Less(t, elapsed, 2*time.Second, "the edge must not wait for the slow cloud")
	require.Equal(t, Stats{InferenceNumber: 1, HardExampleNumber: 1, Fallbacks: 1}, edge.Stats())
}

func TestEdgeCallerCancelIsNotAFallback(t *testing.T) {
	cloud := &fakeCloud{mode: "slow"}
	server := httptest.NewServer(cloud)
	defer server.Close()
	edge, err := NewEdge(EdgeOptions{
		Job: "sedna", CloudURL: server.URL, Model: &scoredModel{},
		Miner: hem.Constant(true), CloudDeadline: 5 * time.Second,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err = edge.Infer(ctx, map[string]any{"score": 0.9})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "asking the cloud model")
	require.Equal(t, Stats{}, edge.Stats())
}

func TestEdgeErrors(t *testing.T) {
	edge, err := NewEdge(EdgeOptions{Job: "sedna", CloudURL: "http://127.0.0.1:1", Model: &scoredModel{}, Miner: &hem.IBT{ThresholdImg: 0.5, ThresholdBox: 0.5}})
	require.NoError(t, err)
	_, err = edge.Infer(context.Background(), "not an object")
	require.ErrorContains(t, err, "running the edge model: input is not an object")
	_, err = edge.Infer(context.Background(), map[string]any{"score": 1.5})
	require.ErrorIs(t, err, hem.ErrInvalidInference)
	require.ErrorContains(t, err, "mining the edge result")
	require.Equal(t, Stats{}, edge.Stats())
}

func TestEdgeMiningThenInference(t *testing.T) {
	mineInput := func(data any) (hem.Inference, error) {
		input := data.(map[string]any)
		return hem.Inference{Boxes: []hem.Box{{Score: input["score"].(float64)}}}, nil
	}
	tests := map[string]struct {
		cloudDown    bool
		score        float64
		wantResult   any
		wantEdgeRuns int64
		wantStats    Stats
	}{
		"easy input runs only the edge": {
			score: 0.9, wantResult: map[string]any{"label": "edge-cat", "score": 0.9}, wantEdgeRuns: 1,
			wantStats: Stats{InferenceNumber: 1},
		},
		"hard input runs only the cloud": {
			score: 0.1, wantResult: json.RawMessage(`{"label":"cloud-cat"}`), wantEdgeRuns: 0,
			wantStats: Stats{InferenceNumber: 1, HardExampleNumber: 1},
		},
		"hard input with cloud down runs the edge": {
			cloudDown: true, score: 0.1, wantResult: map[string]any{"label": "edge-cat", "score": 0.1}, wantEdgeRuns: 1,
			wantStats: Stats{InferenceNumber: 1, HardExampleNumber: 1, Fallbacks: 1},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			server := httptest.NewServer(&fakeCloud{mode: "ok"})
			if tc.cloudDown {
				server.Close()
			} else {
				defer server.Close()
			}
			model := &scoredModel{}
			edge, err := NewEdge(EdgeOptions{
				Job: "sedna", CloudURL: server.URL, Model: model, Miner: &hem.Threshold{Threshold: 0.5},
				MiningMode: env.MiningThenInference, MineInput: mineInput,
			})
			require.NoError(t, err)
			result, err := edge.Infer(context.Background(), map[string]any{"score": tc.score})
			require.NoError(t, err)
			require.Equal(t, tc.wantResult, result.Result)
			require.Equal(t, tc.wantEdgeRuns, model.calls.Load())
			require.Equal(t, tc.wantStats, edge.Stats())
		})
	}
}

func TestEdgeAgainstRealServer(t *testing.T) {
	cloudServer, err := NewServer(ServerOptions{Job: "ji-svc", Predictor: PredictorFunc(func(_ context.Context, req PredictRequest) (any, error) {
		var input map[string]float64
		if err := json.Unmarshal(req.Data, &input); err != nil {
			return nil, err
		}
		return map[string]any{"label": "big", "seen": input["score"]}, nil
	})})
	require.NoError(t, err)
	server := httptest.NewServer(cloudServer)
	defer server.Close()
	edge, err := NewEdge(EdgeOptions{Job: "ji-svc", CloudURL: server.URL + "/", Model: &scoredModel{}, Miner: hem.Constant(true)})
	require.NoError(t, err)
	require.Equal(t, server.URL+"/ji-svc/predict", edge.CloudPredictURL())
	result, err := edge.Infer(context.Background(), map[string]any{"score": 0.25})
	require.NoError(t, err)
	require.JSONEq(t, `{"label":"big","seen":0.25}`, string(result.CloudResult))
}

func TestEdgeConcurrentCounters(t *testing.T) {
	server := httptest.NewServer(&fakeCloud{mode: "ok"})
	defer server.Close()
	edge, err := NewEdge(EdgeOptions{Job: "sedna", CloudURL: server.URL, Model: &scoredModel{}, Miner: &hem.Threshold{Threshold: 0.5}})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			score := 0.9
			if i%4 == 0 {
				score = 0.1
			}
			_, err := edge.Infer(context.Background(), map[string]any{"score": score})
			require.NoError(t, err)
		})
	}
	wg.Wait()
	stats := edge.Stats()
	require.Equal(t, Stats{InferenceNumber: 20, HardExampleNumber: 5}, stats)
	require.InDelta(t, 0.25, stats.UploadCloudRatio(), 1e-12)
}

func TestNewEdgeValidates(t *testing.T) {
	valid := EdgeOptions{Job: "sedna", CloudURL: "http://10.0.0.1:5000", Model: &scoredModel{}, Miner: hem.Constant(false)}
	tests := map[string]struct {
		mutate  func(*EdgeOptions)
		wantErr string
	}{
		"valid":                 {mutate: func(*EdgeOptions) {}},
		"no job":                {mutate: func(o *EdgeOptions) { o.Job = "" }, wantErr: "job name"},
		"no model":              {mutate: func(o *EdgeOptions) { o.Model = nil }, wantErr: "a Model and a Miner are required"},
		"no miner":              {mutate: func(o *EdgeOptions) { o.Miner = nil }, wantErr: "a Model and a Miner are required"},
		"no cloud ip":           {mutate: func(o *EdgeOptions) { o.CloudURL = "http://:5000" }, wantErr: "is BIG_MODEL_IP set?"},
		"bad mode":              {mutate: func(o *EdgeOptions) { o.MiningMode = "mine" }, wantErr: `unknown mining mode "mine"`},
		"mining-first no input": {mutate: func(o *EdgeOptions) { o.MiningMode = env.MiningThenInference }, wantErr: "needs MineInput"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			opts := valid
			tc.mutate(&opts)
			edge, err := NewEdge(opts)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "http://10.0.0.1:5000/sedna/predict", edge.CloudPredictURL())
			require.Equal(t, DefaultCloudDeadline, edge.deadline)
		})
	}
}
