// Command mnist-il-eval is the eval worker of the MNIST IncrementalLearningJob (image
// sedna-example/mnist-il-eval:v0.1). It measures every model of MODEL_URLS (the trained model,
// then the deployed one) on the samples of TEST_DATASET_URL and reports, per model in that order,
// metrics {"accuracy": [a], "loss": [l]}; the LC's deploy trigger reads accuracy and
// accuracy_delta (trained minus deployed).
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
	err := sdk.Eval(ctx, il.EvalFunc(ctx, *datasetDir, *mnistDir))
	if err != nil {
		fmt.Fprintln(os.Stderr, "mnist-il-eval:", err)
		os.Exit(1)
	}
}
