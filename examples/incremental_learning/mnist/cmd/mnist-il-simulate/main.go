// Command mnist-il-simulate runs the MNIST incremental learning loop in one process, without
// Kubernetes, through the same code as the workers: initial model, hard examples from a stream of
// training images, labelling, training on the old and new samples, evaluation against the
// deployed model, deployment. It prints the accuracy on the MNIST test images after every round.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/sedna-go/sedna/examples/incremental_learning/mnist/il"
	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
)

func main() {
	config := il.DefaultSimulation()
	mnistDir := flag.String("mnist-dir", "", "directory of the MNIST .gz files (default: the GoMNIST module's data/)")
	workDir := flag.String("work-dir", "", "directory for the dataset, models and round files (default: a temporary directory, removed)")
	flag.IntVar(&config.Initial.Size, "initial-size", config.Initial.Size, "training images the initial model learns from")
	flag.IntVar(&config.StreamPerRound, "stream", config.StreamPerRound, "training images streamed to the inference worker per round")
	flag.IntVar(&config.StreamStart, "stream-start", config.StreamStart, "first streamed training image")
	flag.IntVar(&config.Rounds, "rounds", config.Rounds, "rounds")
	flag.Float64Var(&config.Threshold, "threshold", config.Threshold, "CrossEntropy threshold_cross_entropy")
	flag.IntVar(&config.TrainTrigger, "train-trigger", config.TrainTrigger, "train when the train pool has more samples than this")
	flag.IntVar(&config.TestLimit, "test-limit", 0, "measure on the first N test images (0: all)")
	flag.Parse()
	if err := run(*mnistDir, *workDir, config); err != nil {
		fmt.Fprintln(os.Stderr, "mnist-il-simulate:", err)
		os.Exit(1)
	}
}

func run(mnistDir, workDir string, config il.SimulationConfig) error {
	var err error
	if mnistDir == "" {
		if mnistDir, err = model.DefaultMNISTDir(); err != nil {
			return err
		}
	}
	if workDir == "" {
		if workDir, err = os.MkdirTemp("", "mnist-il-simulate-"); err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(workDir) }() // scratch space
	}
	started := time.Now()
	fmt.Printf("initial model: %s on the first %d training images; stream %d images per round from #%d; CrossEntropy %.2f; trainProb %.1f; train when > %d samples\n",
		il.Arch, config.Initial.Size, config.StreamPerRound, config.StreamStart, config.Threshold, config.TrainProb, config.TrainTrigger)
	fmt.Printf("%5s %8s %5s %8s %6s %5s %10s %11s %8s %9s %7s\n", "round", "streamed", "hard", "labelled", "train", "eval", "evalNew", "evalServed", "deployed", "testAcc", "trainS")
	result, err := il.Simulate(context.Background(), mnistDir, workDir, config, func(r il.RoundResult) {
		fmt.Printf("%5d %8d %5d %8d %6d %5d %9.2f%% %10.2f%% %8v %8.2f%% %7.1f\n", r.Round, r.Streamed, r.Hard, r.Labelled, r.TrainSamples, r.EvalSamples,
			100*r.EvalTrained, 100*r.EvalDeployed, r.Deployed, 100*r.TestAccuracy, r.TrainSeconds)
	})
	if err != nil {
		return err
	}
	fmt.Printf("initial test accuracy %.2f%% on %d test images; total %.1fs\n", 100*result.InitialAccuracy, result.TestImages, time.Since(started).Seconds())
	encoded, err := json.Marshal(result)
	if err != nil {
		return err
	}
	fmt.Printf("RESULT %s\n", encoded)
	return nil
}
