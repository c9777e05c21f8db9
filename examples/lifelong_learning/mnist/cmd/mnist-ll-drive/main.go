// Command mnist-ll-drive plays the world around the MNIST LifelongLearningJob on a cluster:
//
//	init     writes the first task's labelled dataset (upright digits) as the job's Dataset csv,
//	         with MNIST's training images in <dataset dir>/mnist, and creates the job's output
//	         directory <dataset dir>/output
//	stream   sends a stream mixing a new rotation with known ones to the inference worker,
//	         measures its unseen-task detection, and labels what it filed (MNIST's labels stand
//	         in for the human labellers), appending the rows to the Dataset csv
//	measure  classifies every rotation's test images through the worker: accuracy and routing
//
// Each prints a RESULT line of JSON. It reads MNIST from the module cache, so run it from the
// repository.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/examples/lifelong_learning/mnist/ll"
)

// idxImages is MNIST's training images file.
const idxImages = "train-images-idx3-ubyte.gz"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mnist-ll-drive:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("want a command: init, stream or measure")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	datasetDir := fs.String("dataset-dir", "", "the Dataset's directory on the node (dataset.csv, labelled/)")
	url := fs.String("url", "", "the inference worker (http://<node>:8000)")
	unseenDir := fs.String("unseen-dir", "", "where the worker files unseen images (<outputDir>/unseen)")
	samples := fs.Int("samples", 1500, "init: labelled images of the first task")
	from := fs.Int("from", 0, "first MNIST training image used")
	newRotation := fs.Int("new-rotation", 90, "stream: the rotation of the new task")
	newCount := fs.Int("new", 1500, "stream: images of the new task")
	knownRotation := fs.Int("known-rotation", 0, "stream: the rotation of the known task")
	knownCount := fs.Int("known", 500, "stream: images of the known task")
	rotations := fs.String("rotations", "0,90", "measure: rotations to measure")
	testCount := fs.Int("test", 1000, "measure: test images per rotation (the first of MNIST's test set)")
	timeout := fs.Duration("timeout", 3*time.Minute, "give up after this long")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	mnistDir, err := model.DefaultMNISTDir()
	if err != nil {
		return err
	}
	client := &ll.InferClient{BaseURL: *url}
	var result any
	switch args[0] {
	case "init":
		if *datasetDir == "" {
			return errors.New("init needs --dataset-dir")
		}
		train, err := model.LoadTrain(mnistDir)
		if err != nil {
			return err
		}
		if *from+*samples > train.Len() {
			return fmt.Errorf("images %d to %d of %d", *from, *from+*samples, train.Len())
		}
		// The workers read the images from the dataset directory (their MNIST_DIR): a pod has
		// no module cache.
		rows := make([]ll.Row, *samples)
		for i := range rows {
			rows[i] = ll.Row{Ref: "mnist/" + idxImages + ":" + strconv.Itoa(*from+i), Label: int(train.Labels[*from+i]), Rotation: 0}
		}
		// The job's outputDir (<dataset dir>/output in the example) must exist: the LC writes
		// rounds only into an existing directory below its data root.
		for _, dir := range []string{"mnist", "output"} {
			if err := os.MkdirAll(filepath.Join(*datasetDir, dir), 0o755); err != nil {
				return err
			}
		}
		images, err := os.ReadFile(filepath.Join(mnistDir, idxImages))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(*datasetDir, "mnist", idxImages), images, 0o644); err != nil {
			return err
		}
		if err := ll.AppendRows(filepath.Join(*datasetDir, "dataset.csv"), rows); err != nil {
			return err
		}
		result = map[string]int{"rows": len(rows)}
	case "stream":
		if *datasetDir == "" || *url == "" || *unseenDir == "" {
			return errors.New("stream needs --dataset-dir, --url and --unseen-dir")
		}
		train, err := model.LoadTrain(mnistDir)
		if err != nil {
			return err
		}
		fresh, err := ll.RotatedSamples(train, *from, *newCount, *newRotation)
		if err != nil {
			return err
		}
		known, err := ll.RotatedSamples(train, *from+*newCount, *knownCount, *knownRotation)
		if err != nil {
			return err
		}
		all := append(fresh, known...)
		stream := make([]ll.Sample, len(all))
		for i, j := range ll.Shuffle(len(all), uint64(*from)+1) {
			stream[i] = all[j]
		}
		report, err := ll.Stream(ctx, client, stream, func(s ll.Sample) bool { return s.Rotation == *newRotation })
		if err != nil {
			return err
		}
		labelled, err := ll.LabelUnseen(stream, *unseenDir, *datasetDir, filepath.Join(*datasetDir, "dataset.csv"))
		if err != nil {
			return err
		}
		result = map[string]any{"stream": report, "labels": labelled}
	case "measure":
		test, err := model.LoadTest(mnistDir)
		if err != nil {
			return err
		}
		sets := map[int][]ll.Sample{}
		for _, field := range strings.Split(*rotations, ",") {
			rotation, err := strconv.Atoi(strings.TrimSpace(field))
			if err != nil {
				return fmt.Errorf("--rotations: %w", err)
			}
			if sets[rotation], err = ll.RotatedSamples(test, 0, *testCount, rotation); err != nil {
				return err
			}
		}
		tasks, err := ll.MeasureTasks(ctx, client, sets)
		if err != nil {
			return err
		}
		stats, err := client.Stats(ctx)
		if err != nil {
			return err
		}
		result = map[string]any{"tasks": tasks, "stats": stats}
	default:
		return fmt.Errorf("unknown command %q: want init, stream or measure", args[0])
	}
	encoded, err := json.Marshal(result)
	if err != nil {
		return err
	}
	fmt.Println("RESULT", string(encoded))
	return nil
}
