// Command mnist-il-label is the labelling step of the MNIST incremental learning example. In a
// real deployment people label the hard examples; here the TRUE LABELS COME FROM MNIST: the
// labeller finds each collected image among the MNIST training images by its exact pixels and
// takes that image's label. It appends "<hard example file> <label>" lines to the Dataset's index
// file, so the dataset grows, the LC counts the new samples and the train trigger fires.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sedna-go/sedna/examples/incremental_learning/mnist/il"
	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
)

func main() {
	index := flag.String("dataset-index", "/data/mnist-il/index.txt", "the Dataset's index file (spec.url on the node)")
	hardDir := flag.String("hard-examples-dir", "/data/mnist-il/hard-examples", "the directory the inference worker files hard examples in (below the index's directory)")
	mnistDir := flag.String("mnist-dir", "", "directory of the MNIST .gz files (default: the GoMNIST module's data/)")
	watch := flag.Duration("watch", 0, "label again every period until interrupted (0: once)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *index, *hardDir, *mnistDir, *watch); err != nil {
		fmt.Fprintln(os.Stderr, "mnist-il-label:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, index, hardDir, mnistDir string, watch time.Duration) error {
	var err error
	if mnistDir == "" {
		if mnistDir, err = model.DefaultMNISTDir(); err != nil {
			return err
		}
	}
	train, err := model.LoadTrain(mnistDir)
	if err != nil {
		return err
	}
	labeller := il.NewLabeller(train)
	for {
		report, err := il.LabelHardExamples(labeller, index, hardDir, "")
		if err != nil {
			return err
		}
		encoded, err := json.Marshal(report)
		if err != nil {
			return err
		}
		fmt.Printf("RESULT %s\n", encoded)
		if watch <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(watch):
		}
	}
}
