// Command mnist-ll-eval is the eval worker of the MNIST LifelongLearningJob: it evaluates the
// index of MODEL_URLS on TEST_DATASET_URL through task allocation, as inference would, and
// reports each task's accuracy to the LC (package ll, Eval).
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/examples/lifelong_learning/mnist/ll"
	"github.com/sedna-go/sedna/pkg/sdk/lifelong"
)

func main() {
	klog.InitFlags(nil)
	datasetDir := flag.String("dataset-dir", "", "directory sample references are relative to (DATASET_DIR; default: ORIGINAL_DATASET_URL's directory)")
	mnistDir := flag.String("mnist-dir", "", "directory of the MNIST idx files (MNIST_DIR)")
	cacheDir := flag.String("cache-dir", filepath.Join(os.TempDir(), "mnist-ll-models"), "where downloaded models are kept")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := klog.FromContext(ctx)
	worker, err := lifelong.NewWorker(lifelong.Options{})
	if err == nil {
		store, storeErr := ll.StoreFor(worker.Config(), *datasetDir, *mnistDir)
		err = storeErr
		if err == nil {
			var metrics map[string]map[string]float64
			if metrics, err = ll.Eval(ctx, worker, store, *cacheDir); err == nil {
				logger.Info("Evaluation done", "metrics", metrics)
			}
		}
	}
	if err != nil {
		logger.Error(err, "Evaluation failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}
