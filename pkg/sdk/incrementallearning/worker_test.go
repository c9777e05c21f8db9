package incrementallearning

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/hem"
	"github.com/sedna-go/sedna/pkg/sdk/lc"
	"github.com/sedna-go/sedna/pkg/workerauth"
)

// fakeLC records the reports posted to it and answers 200.
type fakeLC struct {
	mu             sync.Mutex
	paths          []string
	bodies         []map[string]any
	authorizations []string
}

func (f *fakeLC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	f.mu.Lock()
	f.paths = append(f.paths, r.Method+" "+r.URL.Path)
	f.bodies = append(f.bodies, body)
	f.authorizations = append(f.authorizations, r.Header.Get("Authorization"))
	f.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"Status": 200, "Message": "OK"})
}

func (f *fakeLC) reports() []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.bodies...)
}

func newWorker(t *testing.T, vars map[string]string) (*Worker, *fakeLC) {
	t.Helper()
	fake := &fakeLC{}
	server := httptest.NewServer(fake)
	t.Cleanup(server.Close)
	all := map[string]string{
		"LC_SERVER": server.URL, "WORKER_NAME": "train-worker-x1y2z", "NAMESPACE": "default", "JOB_NAME": "helmet",
		"DATA_PATH_PREFIX": "/home/data",
	}
	for k, v := range vars {
		all[k] = v
	}
	w, err := NewWorker(Options{Env: env.New(env.MapLookup(all)), Client: lc.Options{Attempts: 1, Interval: time.Millisecond}})
	require.NoError(t, err)
	return w, fake
}

var trainEnv = map[string]string{
	"BASE_MODEL_URL":       "/home/data/models/initial/model.pb",
	"MODEL_URL":            "/home/data/out/train/1",
	"TRAIN_DATASET_URL":    "/home/data/out/data/train/1/data.txt",
	"ORIGINAL_DATASET_URL": "/home/data/ds/index.txt",
}

func TestTrainReportsTheModel(t *testing.T) {
	w, fake := newWorker(t, trainEnv)
	var got TrainInput
	err := w.Train(context.Background(), func(in TrainInput) (TrainOutput, error) {
		got = in
		return TrainOutput{Models: []Model{{Format: "pb", URL: in.OutputDir + "/model.pb", Metrics: map[string]any{"loss": 0.1}}}}, nil
	})
	require.NoError(t, err)
	require.Equal(t, TrainInput{
		BaseModelURL: "/home/data/models/initial/model.pb", OutputDir: "/home/data/out/train/1",
		TrainDatasetURL: "/home/data/out/data/train/1/data.txt", OriginalDatasetURL: "/home/data/ds/index.txt",
		DataPathPrefix: "/home/data",
	}, got)
	require.Equal(t, []string{"POST /sedna/workers/train-worker-x1y2z/info"}, fake.paths)
	require.Equal(t, map[string]any{
		"name": "train-worker-x1y2z", "namespace": "default", "ownerName": "helmet", "ownerKind": "incrementallearningjob",
		"kind": "train", "status": "completed",
		"results": []any{map[string]any{"format": "pb", "url": "/out/train/1/model.pb", "metrics": map[string]any{"loss": 0.1}}},
	}, fake.reports()[0])
}

// TestReportsCarryTheWorkerToken: the token GM puts in the worker's environment is sent with
// every report, so the LC accepts it from any address.
func TestReportsCarryTheWorkerToken(t *testing.T) {
	vars := map[string]string{workerauth.TokenEnv: "job-token"}
	for k, v := range trainEnv {
		vars[k] = v
	}
	w, fake := newWorker(t, vars)
	err := w.Train(context.Background(), func(in TrainInput) (TrainOutput, error) {
		return TrainOutput{Models: []Model{{Format: "pb", URL: in.OutputDir + "/model.pb"}}}, nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"Bearer job-token"}, fake.authorizations)
}

func TestTrainFailureIsReported(t *testing.T) {
	w, fake := newWorker(t, trainEnv)
	boom := errors.New("out of memory")
	err := w.Train(context.Background(), func(TrainInput) (TrainOutput, error) { return TrainOutput{}, boom })
	require.ErrorIs(t, err, boom)
	report := fake.reports()[0]
	require.Equal(t, "failed", report["status"])
	require.Equal(t, "train", report["kind"])
	require.NotContains(t, report, "results")

	// No model is a failure too.
	err = w.Train(context.Background(), func(TrainInput) (TrainOutput, error) { return TrainOutput{}, nil })
	require.ErrorContains(t, err, "no model")
	require.Equal(t, "failed", fake.reports()[1]["status"])
}

func TestTrainWithoutItsEnvironmentFails(t *testing.T) {
	w, fake := newWorker(t, nil)
	called := false
	err := w.Train(context.Background(), func(TrainInput) (TrainOutput, error) { called = true; return TrainOutput{}, nil })
	require.ErrorContains(t, err, "BASE_MODEL_URL, MODEL_URL, TRAIN_DATASET_URL not set")
	require.False(t, called)
	require.Equal(t, "failed", fake.reports()[0]["status"])
}

func TestEvalReportsOneResultPerModelInOrder(t *testing.T) {
	w, fake := newWorker(t, map[string]string{
		"MODEL_URLS":       "/home/data/out/train/1/model.pb;/home/data/models/deploy/model.pb",
		"TEST_DATASET_URL": "/home/data/out/data/eval/1/data.txt",
		"WORKER_NAME":      "eval-worker-abcde",
	})
	err := w.Eval(context.Background(), func(in EvalInput) ([]EvalResult, error) {
		require.Equal(t, []string{"/home/data/out/train/1/model.pb", "/home/data/models/deploy/model.pb"}, in.ModelURLs)
		require.Equal(t, "/home/data/out/data/eval/1/data.txt", in.TestDatasetURL)
		return []EvalResult{
			{Format: "pb", Metrics: map[string]any{"precision": []float64{0.9}}},
			{Format: "pb", Metrics: map[string]any{"precision": []float64{0.8}}},
		}, nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"POST /sedna/workers/eval-worker-abcde/info"}, fake.paths)
	report := fake.reports()[0]
	require.Equal(t, "eval", report["kind"])
	require.Equal(t, "completed", report["status"])
	require.Equal(t, []any{
		map[string]any{"format": "pb", "url": "/out/train/1/model.pb", "metrics": map[string]any{"precision": []any{0.9}}},
		map[string]any{"format": "pb", "url": "/models/deploy/model.pb", "metrics": map[string]any{"precision": []any{0.8}}},
	}, report["results"])
}

func TestEvalWithTheWrongNumberOfResultsFails(t *testing.T) {
	w, fake := newWorker(t, map[string]string{"MODEL_URLS": "/a;/b", "TEST_DATASET_URL": "/t"})
	err := w.Eval(context.Background(), func(EvalInput) ([]EvalResult, error) { return []EvalResult{{}}, nil })
	require.ErrorContains(t, err, "1 results for 2 models")
	require.Equal(t, "failed", fake.reports()[0]["status"])
}

func writeConfig(t *testing.T, path, modelPath, version string) {
	t.Helper()
	content := `{"model_config":{"model_path":"` + modelPath + `","model_update_time":"` + version + `"}}`
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

func TestHotUpdaterLoadsEachNewVersionOnce(t *testing.T) {
	config := filepath.Join(t.TempDir(), "model_config.json")
	w, fake := newWorker(t, map[string]string{
		"MODEL_HOT_UPDATE": "True", "MODEL_HOT_UPDATE_CONFIG": config, "MODEL_POLL_PERIOD_SECONDS": "1",
	})
	var loads []string
	fail := false
	h, err := NewHotUpdater(HotUpdaterOptions{Worker: w, Load: func(_ context.Context, path string) error {
		loads = append(loads, path)
		if fail {
			return errors.New("corrupt model")
		}
		return nil
	}})
	require.NoError(t, err)
	require.True(t, h.Enabled())
	ctx := context.Background()

	changed, err := h.Check(ctx)
	require.NoError(t, err)
	require.False(t, changed, "no config yet: nothing deployed")

	writeConfig(t, config, "/model-hot-update/model.pb", "2026-01-01T00:00:00Z")
	changed, err = h.Check(ctx)
	require.NoError(t, err)
	require.True(t, changed)
	changed, err = h.Check(ctx)
	require.NoError(t, err)
	require.False(t, changed, "the same version is not loaded twice")

	fail = true
	writeConfig(t, config, "/model-hot-update/model.pb", "2026-01-01T00:00:01Z")
	_, err = h.Check(ctx)
	require.ErrorContains(t, err, "corrupt model")
	_, err = h.Check(ctx)
	require.NoError(t, err, "a version that failed is not retried every period")

	require.Equal(t, []string{"/model-hot-update/model.pb", "/model-hot-update/model.pb"}, loads)
	reports := fake.reports()
	require.Len(t, reports, 2)
	require.Equal(t, "deploy", reports[0]["kind"])
	require.Equal(t, "completed", reports[0]["status"])
	require.Equal(t, []any{map[string]any{"url": "/model-hot-update/model.pb"}}, reports[0]["results"])
	require.Equal(t, "failed", reports[1]["status"])
}

func TestHotUpdaterRunPollsUntilCancelled(t *testing.T) {
	config := filepath.Join(t.TempDir(), "model_config.json")
	writeConfig(t, config, "/model-hot-update/m1", "v1")
	w, fake := newWorker(t, map[string]string{"MODEL_HOT_UPDATE": "true", "MODEL_HOT_UPDATE_CONFIG": config})
	loaded := make(chan string, 4)
	h, err := NewHotUpdater(HotUpdaterOptions{Worker: w, Period: 5 * time.Millisecond, Load: func(_ context.Context, path string) error {
		loaded <- path
		return nil
	}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.Run(ctx) }()
	require.Equal(t, "/model-hot-update/m1", <-loaded, "the first check is immediate")
	writeConfig(t, config, "/model-hot-update/m2", "v2")
	require.Equal(t, "/model-hot-update/m2", <-loaded)
	require.Eventually(t, func() bool { return len(fake.reports()) == 2 }, 10*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.Empty(t, loaded, "each version is loaded once")
}

func TestHotUpdaterDisabled(t *testing.T) {
	w, _ := newWorker(t, nil)
	h, err := NewHotUpdater(HotUpdaterOptions{Worker: w, Load: func(context.Context, string) error { t.Fatal("loaded"); return nil }})
	require.NoError(t, err)
	require.False(t, h.Enabled())
	require.NoError(t, h.Run(context.Background()))

	w, _ = newWorker(t, map[string]string{"MODEL_HOT_UPDATE": "true"})
	_, err = NewHotUpdater(HotUpdaterOptions{Worker: w, Load: func(context.Context, string) error { return nil }})
	require.ErrorContains(t, err, "MODEL_HOT_UPDATE_CONFIG is not set")
}

func TestHardExampleCollector(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hard")
	c, err := NewHardExampleCollector(dir, "")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })

	first, err := c.Add("a.jpg", []byte("img-a"), "helmet 0.42")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "a.jpg"), first)
	second, err := c.Add("a.jpg", []byte("img-b"), "")
	require.NoError(t, err)
	require.NotEqual(t, first, second, "an existing example is never replaced")
	require.True(t, strings.HasSuffix(second, ".jpg"))

	content, err := os.ReadFile(filepath.Join(dir, "a.jpg"))
	require.NoError(t, err)
	require.Equal(t, "img-a", string(content))
	index, err := os.ReadFile(c.IndexPath())
	require.NoError(t, err)
	require.Equal(t, first+" helmet 0.42\n"+second+"\n", string(index))

	for _, bad := range []string{"../x", "a/b", ".."} {
		_, err := c.Add(bad, nil, "")
		require.Error(t, err, bad)
	}
	_, err = c.Add("", nil, "two\nlines")
	require.Error(t, err)
}

func TestHardExampleMinerFromTheEnvironment(t *testing.T) {
	w, _ := newWorker(t, map[string]string{"HEM_NAME": "Threshold", "HEM_PARAMETERS": `[{"key":"threshold","value":"0.9"}]`})
	miner, err := w.HardExampleMiner(nil)
	require.NoError(t, err)
	require.IsType(t, &hem.Threshold{}, miner)

	w, _ = newWorker(t, map[string]string{"HEM_NAME": "NoSuch"})
	_, err = w.HardExampleMiner(nil)
	require.ErrorContains(t, err, "NoSuch")

	w, _ = newWorker(t, nil)
	_, err = w.HardExampleMiner(nil)
	require.ErrorContains(t, err, "HEM_NAME is not set")
}
