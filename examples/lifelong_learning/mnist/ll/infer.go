package ll

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/sedna-go/sedna/examples/incremental_learning/mnist/il"
	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/sdk/lifelong"
	"github.com/sedna-go/sedna/pkg/sdk/modelfile"
)

// maxClassifyImages bounds one request.
const maxClassifyImages = 256

// MaxUnseenFiles bounds the PNGs the worker files for labelling: past it, unseen images are
// still answered but no longer filed, so callers cannot fill the disk.
const MaxUnseenFiles = 10000

// ErrBadImage marks a request image that is not 784 values in [0,1] (the client's mistake, 400).
var ErrBadImage = errors.New("bad image")

// ErrNoIndex is returned before an index is loaded (503: try again later).
var ErrNoIndex = errors.New("no index loaded yet")

// InferServer is the inference worker: it routes each image to its task's model through the
// deployed index (a local file, MODEL_URLS), keeps the models it downloaded from the knowledge
// base in a cache directory (so it keeps answering while the knowledge base is down), reloads
// the index when the file changes, and files unseen images as PNGs for labelling.
type InferServer struct {
	models    *Models
	indexPath string
	unseenDir string
	worker    *lifelong.Worker
	logger    logr.Logger

	mu sync.Mutex
	// watcher holds the router of the deployed index; nil until the index was first loaded.
	watcher *modelfile.Watcher[*lifelong.Router]
	stats   InferStats
	// unseenFiles counts the PNGs in unseenDir, -1 until counted.
	unseenFiles int
}

// InferStats are the worker's counters.
type InferStats struct {
	Inferences int            `json:"inferences"`
	Unseen     int            `json:"unseen"`
	ByTask     map[string]int `json:"byTask"`
	Tasks      []string       `json:"tasks"`
}

// NewInferServer serves the index at indexPath.
func NewInferServer(worker *lifelong.Worker, indexPath, cacheDir, unseenDir string, logger logr.Logger) *InferServer {
	return &InferServer{models: NewModels(worker, cacheDir), indexPath: indexPath, unseenDir: unseenDir, worker: worker, logger: logger,
		stats: InferStats{ByTask: map[string]int{}}, unseenFiles: -1}
}

// Reload loads the index file the first time, then again whenever it changed since the last
// load (modelfile.Watcher); a failed reload keeps the previous index. ctx bounds the model
// downloads of every later load too (Watch's reloads): pass the worker's lifetime.
func (s *InferServer) Reload(ctx context.Context) error {
	s.mu.Lock()
	watcher := s.watcher
	s.mu.Unlock()
	if watcher != nil {
		_, err := watcher.Reload()
		return err
	}
	watcher, err := modelfile.NewWatcher(s.indexPath, func(path string) (*lifelong.Router, error) { return s.load(ctx, path) })
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.watcher = watcher
	s.mu.Unlock()
	return nil
}

// Watch reloads the index every period until ctx ends; call it after a successful Reload.
func (s *InferServer) Watch(ctx context.Context, period time.Duration) {
	s.mu.Lock()
	watcher := s.watcher
	s.mu.Unlock()
	if watcher != nil {
		watcher.Run(ctx, period)
	}
}

// load reads the index at path and fetches every model it names.
func (s *InferServer) load(ctx context.Context, path string) (*lifelong.Router, error) {
	index, err := s.worker.LoadIndex(ctx, path)
	if err != nil {
		return nil, err
	}
	router, err := lifelong.NewRouter(index)
	if err != nil {
		return nil, err
	}
	router.Margin = DefaultMeasureOptions().Margin
	// Fetch every model now, while the knowledge base is up, so an outage later changes nothing.
	lookup := s.models.ForIndex(ctx, router)
	for _, id := range index.TaskIDs() {
		if _, err := lookup(id); err != nil {
			return nil, fmt.Errorf("loading the model of task %s: %w", id, err)
		}
	}
	s.mu.Lock()
	s.stats.Tasks = index.TaskIDs()
	s.mu.Unlock()
	s.logger.Info("Index loaded", "path", path, "tasks", index.TaskIDs())
	return router, nil
}

// ClassifyRequest is the body of POST /classify.
type ClassifyRequest struct {
	Images [][]float64 `json:"images"`
}

// Classification is one image's answer.
type Classification struct {
	Label  int     `json:"label"`
	Task   string  `json:"task"`
	Unseen bool    `json:"unseen"`
	Score  float64 `json:"score"`
}

// Classify routes and classifies images.
func (s *InferServer) Classify(ctx context.Context, images [][]float64) ([]Classification, error) {
	s.mu.Lock()
	watcher := s.watcher
	s.mu.Unlock()
	if watcher == nil {
		return nil, ErrNoIndex
	}
	router := watcher.Current()
	lookup := s.models.ForIndex(ctx, router)
	results := make([]Classification, 0, len(images))
	for i, image := range images {
		if err := model.CheckImage(image); err != nil {
			return nil, fmt.Errorf("%w: image %d: %w", ErrBadImage, i, err)
		}
		allocation, prediction, err := Infer(router, lookup, image)
		if err != nil {
			return nil, err
		}
		results = append(results, Classification{Label: prediction.Label, Task: allocation.Task, Unseen: allocation.Unseen, Score: allocation.Score})
		if allocation.Unseen && s.unseenDir != "" {
			if err := s.fileUnseen(image); err != nil {
				s.logger.Error(err, "Filing an unseen image failed")
			}
		}
	}
	s.mu.Lock()
	for _, result := range results {
		s.stats.Inferences++
		s.stats.ByTask[result.Task]++
		if result.Unseen {
			s.stats.Unseen++
		}
	}
	s.mu.Unlock()
	return results, nil
}

func (s *InferServer) fileUnseen(image []float64) error {
	content, err := il.EncodePNG(il.FromUnit(image))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(content)
	if err := os.MkdirAll(s.unseenDir, 0o755); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unseenFiles < 0 {
		entries, err := os.ReadDir(s.unseenDir)
		if err != nil {
			return err
		}
		s.unseenFiles = len(entries)
	}
	name := filepath.Join(s.unseenDir, hex.EncodeToString(sum[:8])+".png")
	if _, err := os.Stat(name); err == nil {
		return nil // the same image is filed already
	}
	if s.unseenFiles >= MaxUnseenFiles {
		return fmt.Errorf("%d unseen images are waiting for labelling in %s: not filing more", s.unseenFiles, s.unseenDir)
	}
	if err := os.WriteFile(name, content, 0o644); err != nil {
		return err
	}
	s.unseenFiles++
	return nil
}

// Stats returns the counters.
func (s *InferServer) Stats() InferStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	stats := s.stats
	stats.ByTask = map[string]int{}
	for task, n := range s.stats.ByTask {
		stats.ByTask[task] = n
	}
	return stats
}

// ServeHTTP serves POST /classify and GET /stats.
func (s *InferServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/classify":
		var request ClassifyRequest
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxClassifyImages*model.Pixels*24))
		if err == nil {
			err = json.Unmarshal(body, &request)
		}
		if err != nil || len(request.Images) == 0 || len(request.Images) > maxClassifyImages {
			http.Error(w, fmt.Sprintf(`want {"images": [[784 values in [0,1]], ...]} with 1 to %d images`, maxClassifyImages), http.StatusBadRequest)
			return
		}
		results, err := s.Classify(r.Context(), request.Images)
		switch {
		case errors.Is(err, ErrBadImage):
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		case errors.Is(err, ErrNoIndex):
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		case err != nil:
			// A model download or a cache fault: logged here, not told to the caller.
			s.logger.Error(err, "Classifying failed")
			http.Error(w, "classifying failed", http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]any{"results": results})
	case r.Method == http.MethodGet && r.URL.Path == "/stats":
		writeJSON(w, s.Stats())
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, value any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(value) // the client may be gone; nothing to do
}
