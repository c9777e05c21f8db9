// Command mnist-ll-measure measures lifelong learning on rotated MNIST (tasks 0°, 45°, 90°
// arriving over time) against a fine-tuning baseline and prints the README's tables.
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/examples/lifelong_learning/mnist/ll"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "mnist-ll-measure:", err)
		os.Exit(1)
	}
}

func run() error {
	opts := ll.DefaultMeasureOptions()
	mnistDir := flag.String("mnist-dir", "", "directory of the MNIST idx files (default: the GoMNIST module's data)")
	rotations := flag.String("rotations", "0,45,90", "task rotations in degrees, in order of arrival")
	flag.IntVar(&opts.InitialTrain, "initial", opts.InitialTrain, "labelled images of the first task")
	flag.IntVar(&opts.StreamNew, "stream-new", opts.StreamNew, "images of the new task in each stream")
	flag.IntVar(&opts.StreamKnown, "stream-known", opts.StreamKnown, "images of known tasks in each stream")
	flag.IntVar(&opts.TestPerTask, "test", opts.TestPerTask, "test images per task")
	flag.Float64Var(&opts.Margin, "margin", opts.Margin, "tasks within this relative margin of the nearest compete on model confidence")
	flag.Parse()
	opts.Rotations = nil
	for _, field := range strings.Split(*rotations, ",") {
		rotation, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil {
			return fmt.Errorf("-rotations: %w", err)
		}
		opts.Rotations = append(opts.Rotations, rotation)
	}
	dir := *mnistDir
	if dir == "" {
		var err error
		if dir, err = model.DefaultMNISTDir(); err != nil {
			return err
		}
	}
	train, err := model.LoadTrain(dir)
	if err != nil {
		return err
	}
	test, err := model.LoadTest(dir)
	if err != nil {
		return err
	}
	start := time.Now()
	measurement, err := ll.Measure(train, test, opts)
	if err != nil {
		return err
	}
	if err := measurement.Print(os.Stdout); err != nil {
		return fmt.Errorf("printing the measurement: %w", err)
	}
	fmt.Printf("\n(measured in %s)\n", time.Since(start).Round(time.Second))
	return nil
}
