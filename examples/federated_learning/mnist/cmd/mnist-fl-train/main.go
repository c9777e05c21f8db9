// Command mnist-fl-train is a training worker of the MNIST
// FederatedLearningJob (image sedna-example/mnist-fl-train:v0.1). It reads
// its node's share from the Dataset's index (TRAIN_DATASET_URL), joins the
// aggregator (AGG_IP, AGG_PORT, presenting SEDNA_AGG_TOKEN) with
// pkg/sdk/federated's Go client, trains every round on its share, and
// evaluates every aggregate on the 10,000 MNIST test images
// (<dataset dir>/mnist/t10k-*), reporting the round, how it closed and the
// accuracy to the LC (LC_SERVER). It exits once the aggregator says
// training is over. The training settings are fl.DefaultConfig, the ones
// mnist-fl-measure measures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/examples/federated_learning/mnist/fl"
	"github.com/sedna-go/sedna/examples/incremental_learning/mnist/il"
	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/federated"
)

func main() {
	klog.InitFlags(nil)
	datasetDir := flag.String("dataset-dir", os.Getenv("DATASET_DIR"), "directory sample references are relative to (default: the directory of TRAIN_DATASET_URL)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *datasetDir)
	stop()
	if err != nil {
		klog.ErrorS(err, "mnist-fl-train failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

func run(ctx context.Context, datasetDir string) error {
	logger := klog.FromContext(ctx)
	environment := env.New(os.LookupEnv)
	index := environment.Get(federated.EnvTrainDatasetURL, "")
	if index == "" {
		return errors.New("environment variable " + federated.EnvTrainDatasetURL + " is not set: where is the node's dataset index?")
	}
	if datasetDir == "" {
		datasetDir = filepath.Dir(index)
	}
	samples, err := il.ReadIndex(index)
	if err != nil {
		return err
	}
	train, err := il.NewStore(datasetDir, "").Load(samples)
	if err != nil {
		return err
	}
	test, err := model.LoadTest(filepath.Join(datasetDir, il.MNISTSubdir))
	if err != nil {
		return fmt.Errorf("loading the test images beside the dataset: %w", err)
	}
	cfg := fl.DefaultConfig()
	// The node's digits say which share it holds, which seeds its local
	// shuffling as in mnist-fl-measure (any other data trains as share 1).
	node, _ := fl.NodeOf(fl.LabelsOf(train))
	opts, err := federated.ClientOptionsFromEnv(environment, federated.AlgorithmFedAvg)
	if err != nil {
		return err
	}
	opts.Binary, opts.DType, opts.ModelFormat = true, federated.Float64, "sflb"
	opts.Evaluate = func(_ context.Context, agg *federated.Aggregate) (map[string]float64, error) {
		accuracy, err := cfg.Accuracy(agg.Weights, test)
		if err != nil {
			return nil, err
		}
		logger.Info("Evaluated the global model", "round", agg.Round, "accuracy", accuracy, "roundClients", agg.RoundClients,
			"lateClients", agg.LateClients)
		return map[string]float64{"accuracy": accuracy}, nil
	}
	client, err := federated.NewClient(opts)
	if err != nil {
		return err
	}
	initial, err := cfg.NewModel()
	if err != nil {
		return err
	}
	logger.Info("Training", "images", train.Len(), "digits", fl.LabelsOf(train), "model", cfg.Arch, "aggregator", opts.URL)
	started := time.Now()
	final, err := client.Run(ctx, fl.ToWeights(initial), &fl.LocalTrainer{Config: cfg, Node: node, Data: train})
	if err != nil {
		return err
	}
	accuracy, err := cfg.Accuracy(final.Weights, test)
	if err != nil {
		return err
	}
	logger.Info("Training finished", "round", final.Round, "accuracy", accuracy, "duration", time.Since(started))
	return nil
}
