package ll

import (
	"fmt"
	"os"

	"github.com/sedna-go/sedna/examples/incremental_learning/mnist/il"
	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/sdk/lifelong"
)

// StoreFor resolves sample references for a stage: below datasetDir (DATASET_DIR, else the
// directory of ORIGINAL_DATASET_URL), with idx files missing there looked up in mnistDir
// (MNIST_DIR, else the GoMNIST module's data).
func StoreFor(cfg lifelong.Config, datasetDir, mnistDir string) (*il.Store, error) {
	if datasetDir == "" {
		datasetDir = os.Getenv("DATASET_DIR")
	}
	dir, err := il.DatasetDir(datasetDir, cfg.OriginalDatasetURL)
	if err != nil {
		return nil, err
	}
	if mnistDir == "" {
		mnistDir = os.Getenv("MNIST_DIR")
	}
	if mnistDir == "" {
		if mnistDir, err = model.DefaultMNISTDir(); err != nil {
			return nil, fmt.Errorf("no MNIST directory (MNIST_DIR): %w", err)
		}
	}
	return il.NewStore(dir, mnistDir), nil
}
