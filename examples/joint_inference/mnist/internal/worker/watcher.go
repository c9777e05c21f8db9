package worker

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
)

// Watcher holds the model loaded from a file and reloads it when the file's
// modification time or size changes. A file that fails to load is logged
// and the previous model kept: a half-copied model must not take a serving
// worker down.
type Watcher struct {
	path    string
	current atomic.Pointer[model.Model]

	mu      sync.Mutex
	modTime time.Time
	size    int64
}

// NewWatcher loads path; the first load must succeed.
func NewWatcher(path string) (*Watcher, error) {
	if path == "" {
		return nil, fmt.Errorf("no model file given (is MODEL_URL set?)")
	}
	w := &Watcher{path: path}
	if _, err := w.reload(); err != nil {
		return nil, err
	}
	return w, nil
}

// Path is the watched file.
func (w *Watcher) Path() string { return w.path }

// Current returns the latest successfully loaded model.
func (w *Watcher) Current() *model.Model { return w.current.Load() }

// Run polls the file every period until ctx ends.
func (w *Watcher) Run(ctx context.Context, period time.Duration) {
	logger := klog.FromContext(ctx)
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		changed, err := w.reload()
		if err != nil {
			logger.Error(err, "Keeping the previous model", "path", w.path)
			continue
		}
		if changed {
			logger.Info("Reloaded the model", "path", w.path, "arch", w.Current().Arch().String())
		}
	}
}

// reload loads the file if it changed since the last successful load.
func (w *Watcher) reload() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	info, err := os.Stat(w.path)
	if err != nil {
		return false, fmt.Errorf("loading model: %w", err)
	}
	if w.current.Load() != nil && info.ModTime().Equal(w.modTime) && info.Size() == w.size {
		return false, nil
	}
	loaded, err := model.Load(w.path)
	if err != nil {
		return false, err
	}
	w.current.Store(loaded)
	w.modTime, w.size = info.ModTime(), info.Size()
	return true, nil
}
