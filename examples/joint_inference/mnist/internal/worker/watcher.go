package worker

import (
	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/sdk/modelfile"
)

// Watcher holds the model loaded from MODEL_URL and reloads it when the file changes
// (pkg/sdk/modelfile).
type Watcher = modelfile.Watcher[*model.Model]

// NewWatcher loads path; the first load must succeed.
func NewWatcher(path string) (*Watcher, error) {
	return modelfile.NewWatcher(path, model.Load)
}
