package ll

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/sedna-go/sedna/examples/incremental_learning/mnist/il"
	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/kb"
	"github.com/sedna-go/sedna/pkg/sdk/lifelong"
)

// TrainResult is what a train stage did.
type TrainResult struct {
	Published lifelong.Published
	// NewTasks were learned in this round; Skipped were already in the knowledge base.
	NewTasks, Skipped []string
	Labeled           int
}

// Train is the train stage: the labelled samples of TRAIN_DATASET_URL are grouped by rotation;
// every task the knowledge base does not know yet gets a model, uploaded to the knowledge base;
// the index (CLOUD_KB_INDEX's tasks plus the new ones) goes to the knowledge base and into
// OUTPUT_URL; the LC hears of it. Known tasks keep the model they were learned with, which is
// why the knowledge base does not forget them.
func Train(ctx context.Context, worker *lifelong.Worker, store *il.Store) (TrainResult, error) {
	cfg := worker.Config()
	if err := cfg.Need(lifelong.EnvKBServer, lifelong.EnvTrainDatasetURL); err != nil {
		return TrainResult{}, err
	}
	rows, err := ReadCSV(cfg.TrainDatasetURL)
	if err != nil {
		return TrainResult{}, err
	}
	previous, err := worker.PreviousIndex(ctx)
	if err != nil {
		return TrainResult{}, err
	}
	known := map[string]bool{}
	if previous != nil {
		for _, id := range previous.TaskIDs() {
			known[id] = true
		}
	}
	order, groups, err := lifelong.Group(Definition, rows, RowAttributes)
	if err != nil {
		return TrainResult{}, err
	}
	var result TrainResult
	var tasks []kb.Task
	for _, id := range order {
		if known[id] {
			result.Skipped = append(result.Skipped, id)
			continue
		}
		group := groups[id]
		data, err := Load(store, group)
		if err != nil {
			return TrainResult{}, err
		}
		trained, task, err := TrainTask(id, group[0].Rotation, data, uint64(len(tasks)+len(known)+1))
		if err != nil {
			return TrainResult{}, err
		}
		encoded, err := trained.MarshalBinary()
		if err != nil {
			return TrainResult{}, err
		}
		sum := sha256.Sum256(encoded)
		if task.Model.URL, err = worker.KB().UploadFile(ctx, id+"-"+hex.EncodeToString(sum[:6])+".smnistm", encoded); err != nil {
			return TrainResult{}, err
		}
		tasks = append(tasks, task)
		result.NewTasks = append(result.NewTasks, id)
		result.Labeled += len(group)
	}
	index, err := lifelong.Merge(previous, FeatureSpace, FeatureDimension, tasks)
	if err != nil {
		return TrainResult{}, err
	}
	if len(index.Tasks) == 0 {
		return TrainResult{}, fmt.Errorf("the training dataset %s has no samples and there is no previous index", cfg.TrainDatasetURL)
	}
	if result.Published, err = worker.Publish(ctx, index, ""); err != nil {
		return TrainResult{}, err
	}
	return result, worker.ReportTrain(ctx, result.Published, result.Labeled)
}

// Models loads task models from the knowledge base into a cache directory and keeps them in
// memory; with the knowledge base down, a model already in the cache is used.
type Models struct {
	worker *lifelong.Worker
	cache  string
	mu     sync.Mutex
	loaded map[string]*model.Model
}

// NewModels caches downloaded models in cacheDir.
func NewModels(worker *lifelong.Worker, cacheDir string) *Models {
	return &Models{worker: worker, cache: cacheDir, loaded: map[string]*model.Model{}}
}

// Get returns the model at url.
func (m *Models) Get(ctx context.Context, url string) (*model.Model, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if loaded, ok := m.loaded[url]; ok {
		return loaded, nil
	}
	sum := sha256.Sum256([]byte(url))
	cached := filepath.Join(m.cache, hex.EncodeToString(sum[:12])+".smnistm")
	content, err := os.ReadFile(cached)
	if err != nil {
		if m.worker.KB() == nil {
			return nil, fmt.Errorf("model %s is not cached and %s is not set", url, lifelong.EnvKBServer)
		}
		if content, err = m.worker.KB().Download(ctx, url); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(m.cache, 0o755); err != nil {
			return nil, fmt.Errorf("caching model %s: %w", url, err)
		}
		if err := os.WriteFile(cached+".tmp", content, 0o644); err != nil {
			return nil, fmt.Errorf("caching model %s: %w", url, err)
		}
		if err := os.Rename(cached+".tmp", cached); err != nil {
			return nil, fmt.Errorf("caching model %s: %w", url, err)
		}
	}
	loaded, err := model.UnmarshalBinary(content)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", url, err)
	}
	m.loaded[url] = loaded
	return loaded, nil
}

// ForIndex returns a task → model function for Infer.
func (m *Models) ForIndex(ctx context.Context, router *lifelong.Router) func(task string) (*model.Model, error) {
	return func(id string) (*model.Model, error) {
		task, ok := router.Task(id)
		if !ok {
			return nil, fmt.Errorf("no task %s in the index", id)
		}
		return m.Get(ctx, task.Model.URL)
	}
}

// Eval is the eval stage: the index of MODEL_URLS is evaluated on TEST_DATASET_URL: each
// task's test samples (by rotation) go through task allocation and the allocated model, as at
// inference. Metrics by task: accuracy, and allocation (the share routed to the task's own
// model).
func Eval(ctx context.Context, worker *lifelong.Worker, store *il.Store, cacheDir string) (map[string]map[string]float64, error) {
	cfg := worker.Config()
	if err := cfg.Need(lifelong.EnvModelURLs, lifelong.EnvTestDatasetURL); err != nil {
		return nil, err
	}
	index, err := worker.LoadIndex(ctx, cfg.ModelURLs[0])
	if err != nil {
		return nil, err
	}
	router, err := lifelong.NewRouter(index)
	if err != nil {
		return nil, err
	}
	router.Margin = DefaultMeasureOptions().Margin
	rows, err := ReadCSV(cfg.TestDatasetURL)
	if err != nil {
		return nil, err
	}
	order, groups, err := lifelong.Group(Definition, rows, RowAttributes)
	if err != nil {
		return nil, err
	}
	models := NewModels(worker, cacheDir).ForIndex(ctx, router)
	metrics := map[string]map[string]float64{}
	for _, id := range order {
		if _, ok := router.Task(id); !ok {
			continue // a task not learned yet has nothing to evaluate
		}
		data, err := Load(store, groups[id])
		if err != nil {
			return nil, err
		}
		correct, routed := 0, 0
		for i := 0; i < data.Len(); i++ {
			allocation, prediction, err := Infer(router, models, data.Image(i))
			if err != nil {
				return nil, err
			}
			if prediction.Label == int(data.Labels[i]) {
				correct++
			}
			if allocation.Task == id {
				routed++
			}
		}
		metrics[id] = map[string]float64{"accuracy": float64(correct) / float64(data.Len()), "allocation": float64(routed) / float64(data.Len())}
	}
	if len(metrics) == 0 {
		return nil, fmt.Errorf("the test dataset %s has no samples of the index's tasks %v", cfg.TestDatasetURL, index.TaskIDs())
	}
	published := lifelong.Published{Index: index, LocalFile: cfg.ModelURLs[0]}
	if strings.HasPrefix(cfg.ModelURLs[0], "http://") || strings.HasPrefix(cfg.ModelURLs[0], "https://") {
		published = lifelong.Published{Index: index, KBURL: cfg.ModelURLs[0]}
	}
	return metrics, worker.ReportEval(ctx, published, metrics)
}

// encodeRows is WriteCSV into memory.
func encodeRows(rows []Row) ([]byte, error) {
	var buffer bytes.Buffer
	err := WriteCSV(&buffer, rows)
	return buffer.Bytes(), err
}
