package lifelong

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/kb"
	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/lc"
)

// startKB runs a real knowledge base server (package kb) with the given tokens.
func startKB(t *testing.T, writeToken, readToken string) *httptest.Server {
	dir := t.TempDir()
	files, err := kb.NewDirStore(filepath.Join(dir, "files"))
	require.NoError(t, err)
	store, err := kb.OpenStore(dir, files)
	require.NoError(t, err)
	server, err := kb.NewServer(kb.Options{Store: store, WriteToken: writeToken, ReadToken: readToken, ScratchDir: t.TempDir(), Logger: logr.Discard()})
	require.NoError(t, err)
	httpServer := httptest.NewServer(server)
	t.Cleanup(func() {
		httpServer.Close()
		_ = store.Close()
		_ = files.Close()
	})
	return httpServer
}

func testIndex(modelURL string) *kb.Index {
	return &kb.Index{Format: kb.IndexFormat, FeatureSpace: "test", Dimension: 2, Tasks: []kb.Task{
		{ID: "rotation-0", Attributes: map[string]string{"rotation": "0"}, Centroids: [][]float64{{0, 0}}, Radius: 1,
			Model: kb.Model{URL: modelURL, Format: "bin", Metrics: map[string]float64{"accuracy": 0.97}, Classes: []string{"0", "1"}}},
		{ID: "rotation-90", Centroids: [][]float64{{5, 5}}, Radius: 1,
			Model: kb.Model{URL: modelURL, Metrics: map[string]float64{"accuracy": 0.95}, Classes: []string{"1", "2"}}},
	}}
}

func TestKBClientAgainstTheServer(t *testing.T) {
	server := startKB(t, "w", "r")
	ctx := context.Background()
	writer, err := NewKBClient(server.URL, "w", nil)
	require.NoError(t, err)
	reader, err := NewKBClient(server.URL+"/", "r", nil)
	require.NoError(t, err)

	modelURL, err := writer.UploadFile(ctx, "rotation-0.model", []byte("weights"))
	require.NoError(t, err)
	require.Equal(t, server.URL+"/knowledgebase/file/download?files=rotation-0.model&name=rotation-0.model", modelURL)
	indexURL, err := writer.UpdateIndex(ctx, testIndex(modelURL))
	require.NoError(t, err)
	require.NoError(t, writer.UpdateStatus(ctx, []string{"rotation-0"}, 1))

	// The inference worker's read token downloads and queries, and cannot write.
	content, err := reader.Download(ctx, modelURL)
	require.NoError(t, err)
	require.Equal(t, "weights", string(content))
	index, err := reader.DownloadIndex(ctx, indexURL)
	require.NoError(t, err)
	require.Equal(t, 1, index.Tasks[0].Status)
	matches, err := reader.Query(ctx, "test", [][]float64{{0.1, 0}, {5, 5.5}, {2.5, 2.5}})
	require.NoError(t, err)
	require.Equal(t, "rotation-0", matches[0].Task)
	require.Equal(t, modelURL, matches[0].Model.URL)
	require.Equal(t, "rotation-90", matches[1].Task)
	require.True(t, matches[2].Unseen)

	_, err = reader.UploadFile(ctx, "x.model", []byte("x"))
	var status *StatusError
	require.ErrorAs(t, err, &status)
	require.Equal(t, http.StatusForbidden, status.Code)
	require.Contains(t, status.Detail, "read token cannot write")
	require.False(t, IsUnavailable(err), "a refusal is not an outage")

	// The token never leaves for another host.
	_, err = writer.Download(ctx, "http://elsewhere.example/knowledgebase/file/download?files=a")
	require.ErrorContains(t, err, "not a URL of the knowledge base")

	// A knowledge base that is down is unavailable.
	server.Close()
	_, err = reader.Query(ctx, "test", [][]float64{{0, 0}})
	require.True(t, IsUnavailable(err))
	_, err = NewKBClient("kb:9020", "", nil)
	require.ErrorContains(t, err, "not an http(s) URL")
}

type recordingReporter struct {
	mu       sync.Mutex
	messages []lc.Message
}

func (r *recordingReporter) Report(_ context.Context, msg lc.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.messages = append(r.messages, msg)
	return nil
}

func TestReadConfig(t *testing.T) {
	cfg, err := ReadConfig(env.New(env.MapLookup(map[string]string{
		"KB_SERVER": "http://kb:9020/", "HAS_COMPLETED_INITIAL_TRAINING": "True", "CLOUD_KB_INDEX": "/out/train/1/index.json",
		"MODEL_URLS": "a;b; ", "TRAIN_DATASET_URL": "/d/train.csv", "SEDNA_KB_TOKEN": "t",
	})))
	require.NoError(t, err)
	require.Equal(t, "http://kb:9020", cfg.KBServer)
	require.True(t, cfg.HasCompletedInitialTraining)
	require.Equal(t, []string{"a", "b"}, cfg.ModelURLs)
	require.Equal(t, DefaultOutputURL, cfg.OutputURL)
	require.Equal(t, "t", cfg.KBToken)
	require.NoError(t, cfg.Need(EnvKBServer, EnvTrainDatasetURL, EnvModelURLs))
	require.EqualError(t, cfg.Need(EnvTestDatasetURL, EnvOriginalDatasetURL), "environment variables not set: TEST_DATASET_URL, ORIGINAL_DATASET_URL")

	_, err = ReadConfig(env.New(env.MapLookup(map[string]string{"HAS_COMPLETED_INITIAL_TRAINING": "true"})))
	require.ErrorContains(t, err, "CLOUD_KB_INDEX is not set")
	_, err = ReadConfig(env.New(env.MapLookup(map[string]string{"HAS_COMPLETED_INITIAL_TRAINING": "maybe"})))
	require.ErrorContains(t, err, "not a boolean")
}

func TestPublishAndReportInUpstreamShape(t *testing.T) {
	server := startKB(t, "w", "")
	output := t.TempDir()
	prefix := filepath.Dir(output)
	reporter := &recordingReporter{}
	worker, err := NewWorker(Options{Reporter: reporter, Env: env.New(env.MapLookup(map[string]string{
		"KB_SERVER": server.URL, "SEDNA_KB_TOKEN": "w", "OUTPUT_URL": output, "DATA_PATH_PREFIX": prefix,
		"JOB_NAME": "ll", "NAMESPACE": "default", "WORKER_NAME": "train-worker-abcde",
	}))})
	require.NoError(t, err)
	ctx := context.Background()
	previous, err := worker.PreviousIndex(ctx)
	require.NoError(t, err)
	require.Nil(t, previous, "the initial training extends nothing")

	published, err := worker.Publish(ctx, testIndex("http://kb/m"), "")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(output, IndexFileName), published.LocalFile)
	fromKB, err := worker.LoadIndex(ctx, published.KBURL)
	require.NoError(t, err)
	fromFile, err := worker.LoadIndex(ctx, published.LocalFile)
	require.NoError(t, err)
	require.Equal(t, fromKB, fromFile)

	require.NoError(t, worker.ReportTrain(ctx, published, 1234))
	require.NoError(t, worker.ReportEval(ctx, published, map[string]map[string]float64{"rotation-0": {"accuracy": 0.9}, "rotation-90": {"accuracy": 0.8}}))
	train := reporter.messages[0]
	require.Equal(t, "lifelonglearningjob", train.OwnerKind)
	require.Equal(t, "train", train.Kind)
	require.Equal(t, "completed", train.Status)
	encoded, err := json.Marshal(train.Results)
	require.NoError(t, err)
	var results []struct {
		Format        string                        `json:"format"`
		URL           string                        `json:"url"`
		Classes       []string                      `json:"classes"`
		CurrentMetric map[string]map[string]float64 `json:"current_metric"`
		Labeled       int                           `json:"number_of_labeled_unseen_sample"`
		Models        int                           `json:"number_of_model"`
		Metrics       map[string]float64            `json:"metrics"`
	}
	require.NoError(t, json.Unmarshal(encoded, &results))
	require.Len(t, results, 1)
	require.Equal(t, "json", results[0].Format)
	require.Equal(t, published.KBURL, results[0].URL, "the knowledge base's URL, as upstream reports it")
	require.Equal(t, []string{"0", "1", "2"}, results[0].Classes)
	require.Equal(t, 0.97, results[0].CurrentMetric["rotation-0"]["accuracy"])
	require.Equal(t, 1234, results[0].Labeled)
	require.Equal(t, 2, results[0].Models)

	// Without a knowledge base URL the local file is reported as a host path.
	require.NoError(t, worker.ReportEval(ctx, Published{Index: published.Index, LocalFile: published.LocalFile}, map[string]map[string]float64{"rotation-0": {"accuracy": 1}}))
	encoded, err = json.Marshal(reporter.messages[2].Results)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(encoded, &results))
	require.Equal(t, "/"+filepath.Base(output)+"/"+IndexFileName, results[0].URL, "DATA_PATH_PREFIX is removed: the LC sees host paths")

	encoded, err = json.Marshal(reporter.messages[1].Results)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(encoded, &results))
	require.Equal(t, "eval", reporter.messages[1].Kind)
	require.InDelta(t, 0.85, results[0].Metrics["accuracy"], 1e-12)

	// A training after the first extends CLOUD_KB_INDEX.
	worker, err = NewWorker(Options{Reporter: reporter, Env: env.New(env.MapLookup(map[string]string{
		"KB_SERVER": server.URL, "SEDNA_KB_TOKEN": "w", "HAS_COMPLETED_INITIAL_TRAINING": "true", "CLOUD_KB_INDEX": published.KBURL,
	}))})
	require.NoError(t, err)
	previous, err = worker.PreviousIndex(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"rotation-0", "rotation-90"}, previous.TaskIDs())

	_, err = worker.LoadIndex(ctx, filepath.Join(t.TempDir(), "missing.json"))
	require.True(t, errors.Is(err, os.ErrNotExist))
}

// Concurrent WriteIndexFile calls on one directory each use their own temporary file: every call
// succeeds and the file left is one complete index (a shared ".tmp" name made a writer rename
// the other's half-written file, or fail on a temporary already renamed away).
func TestWriteIndexFileConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	const writers = 6
	for round := 0; round < 20; round++ {
		var wg sync.WaitGroup
		errs := make([]error, writers)
		for i := range writers {
			index := &kb.Index{Format: kb.IndexFormat, FeatureSpace: "space", Dimension: 1}
			for j := range 200 * (i + 1) {
				index.Tasks = append(index.Tasks, kb.Task{ID: "t" + string(rune('a'+i)) + "-" + string(rune('0'+j%10)), Radius: 1})
			}
			wg.Add(1)
			go func() { defer wg.Done(); _, errs[i] = WriteIndexFile(dir, index) }()
		}
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "round %d writer %d", round, i)
		}
		data, err := os.ReadFile(filepath.Join(dir, IndexFileName))
		require.NoError(t, err)
		var index kb.Index
		require.NoError(t, json.Unmarshal(data, &index), "round %d: the index file is not one whole index", round)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left behind")
}
