// Command mnist-il-train is the train worker of the MNIST IncrementalLearningJob (image
// sedna-example/mnist-il-train:v0.1). It starts from BASE_MODEL_URL's weights, trains on the
// samples that model was trained on (the train.txt beside it) plus the round's samples
// (TRAIN_DATASET_URL), writes model.smnistm and train.txt into MODEL_URL and reports the model to
// the LC.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/examples/incremental_learning/mnist/il"
	sdk "github.com/sedna-go/sedna/pkg/sdk/incrementallearning"
)

func main() {
	klog.InitFlags(nil)
	datasetDir := flag.String("dataset-dir", os.Getenv("DATASET_DIR"), "directory sample references are relative to (default: the directory of ORIGINAL_DATASET_URL)")
	mnistDir := flag.String("mnist-dir", os.Getenv("MNIST_DIR"), "where to look for an MNIST idx file missing below the dataset directory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := sdk.Train(ctx, il.TrainFunc(ctx, *datasetDir, *mnistDir))
	if err != nil {
		fmt.Fprintln(os.Stderr, "mnist-il-train:", err)
		os.Exit(1)
	}
}
