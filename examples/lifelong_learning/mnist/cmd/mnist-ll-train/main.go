// Command mnist-ll-train is the train worker of the MNIST LifelongLearningJob: it learns a
// model for every task (rotation) of TRAIN_DATASET_URL the knowledge base does not know yet,
// uploads the models and the index to KB_SERVER, writes the index into OUTPUT_URL and reports
// to the LC (package ll, Train).
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/examples/lifelong_learning/mnist/ll"
	"github.com/sedna-go/sedna/pkg/sdk/lifelong"
)

func main() {
	klog.InitFlags(nil)
	datasetDir := flag.String("dataset-dir", "", "directory sample references are relative to (DATASET_DIR; default: ORIGINAL_DATASET_URL's directory)")
	mnistDir := flag.String("mnist-dir", "", "directory of the MNIST idx files (MNIST_DIR)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := klog.FromContext(ctx)
	worker, err := lifelong.NewWorker(lifelong.Options{})
	if err == nil {
		var result ll.TrainResult
		store, storeErr := ll.StoreFor(worker.Config(), *datasetDir, *mnistDir)
		err = storeErr
		if err == nil {
			result, err = ll.Train(ctx, worker, store)
		}
		if err == nil {
			logger.Info("Training done", "newTasks", result.NewTasks, "skipped", result.Skipped, "labeled", result.Labeled,
				"index", result.Published.KBURL, "file", result.Published.LocalFile)
		}
	}
	if err != nil {
		logger.Error(err, "Training failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}
