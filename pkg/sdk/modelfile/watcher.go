// Package modelfile loads a worker's model from the file MODEL_URL names and reloads it when the
// file changes, so a model replaced on the node (a redeploy, a hot update) is served without a
// restart. A file that fails to load is logged and the previous model kept: a half-copied model
// must not take a serving worker down.
package modelfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/fileversion"
)

// Watcher holds the model loaded from a file.
type Watcher[M any] struct {
	path string
	load func(path string) (M, error)

	current atomic.Pointer[M]
	mu      sync.Mutex
	version fileversion.Version // of the file current was loaded from
	loads   atomic.Int64
}

// NewWatcher loads path with load; the first load must succeed.
func NewWatcher[M any](path string, load func(path string) (M, error)) (*Watcher[M], error) {
	if path == "" {
		return nil, errors.New("no model file given (is MODEL_URL set?)")
	}
	w := &Watcher[M]{path: path, load: load}
	if _, err := w.Reload(); err != nil {
		return nil, err
	}
	return w, nil
}

// Path is the watched file.
func (w *Watcher[M]) Path() string { return w.path }

// Current returns the latest successfully loaded model.
func (w *Watcher[M]) Current() M { return *w.current.Load() }

// Loads counts successful loads, the first included: a model version for reports and tests.
func (w *Watcher[M]) Loads() int64 { return w.loads.Load() }

// Run polls the file every period until ctx ends.
func (w *Watcher[M]) Run(ctx context.Context, period time.Duration) {
	logger := klog.FromContext(ctx)
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		changed, err := w.Reload()
		if err != nil {
			logger.Error(err, "Keeping the previous model", "path", w.path)
			continue
		}
		if changed {
			logger.Info("Reloaded the model", "path", w.path, "version", w.Loads())
		}
	}
}

// Reload loads the file if it changed since the last successful load (a new inode, size or
// modification time: fileversion), and reports whether it did.
func (w *Watcher[M]) Reload() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	info, err := os.Stat(w.path)
	if err != nil {
		return false, fmt.Errorf("loading model: %w", err)
	}
	version := fileversion.Of(info)
	if w.current.Load() != nil && version.Equal(w.version) {
		return false, nil
	}
	loaded, err := w.load(w.path)
	if err != nil {
		return false, fmt.Errorf("loading model %s: %w", w.path, err)
	}
	w.current.Store(&loaded)
	w.version = version
	w.loads.Add(1)
	return true, nil
}
