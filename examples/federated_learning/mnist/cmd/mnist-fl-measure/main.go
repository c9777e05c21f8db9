// Command mnist-fl-measure measures the MNIST federated learning example on
// this machine, on the 10,000 test images: (a) each edge node's model
// trained alone on its non-IID share, (b) the federated model after every
// round (a real aggregation server and the three nodes' Go clients on
// loopback, the trainer program's code and settings), (c) a model trained
// centrally on all 60,000 images. It prints a RESULT line with the numbers
// as JSON (the e2e test compares with it).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/sedna-go/sedna/examples/federated_learning/mnist/fl"
	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
)

func main() {
	cfg := fl.DefaultConfig()
	mnistDir := flag.String("mnist-dir", "", "directory of the MNIST .gz files (default: the GoMNIST module's data/)")
	arch := flag.String("arch", cfg.Arch.String(), "model architecture (softmax-pool<P> or mlp-pool<P>-h<H>)")
	flag.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "federated rounds")
	flag.IntVar(&cfg.LocalEpochs, "local-epochs", cfg.LocalEpochs, "epochs of local training per round")
	flag.IntVar(&cfg.LocalParts, "local-parts", cfg.LocalParts, "slices of a node's data; each round trains on the next one")
	flag.Uint64Var(&cfg.InitSeed, "init-seed", cfg.InitSeed, "seed of the initial model")
	flag.Float64Var(&cfg.RoundDecay, "round-decay", cfg.RoundDecay, "learning rate factor per round")
	flag.Float64Var(&cfg.Momentum, "momentum", cfg.Momentum, "SGD momentum")
	flag.Float64Var(&cfg.LearningRate, "lr", cfg.LearningRate, "SGD learning rate")
	flag.Float64Var(&cfg.ServerLR, "server-lr", cfg.ServerLR, "aggregator's server learning rate (SEDNA_AGG_SERVER_LR)")
	flag.Float64Var(&cfg.ServerMomentum, "server-momentum", cfg.ServerMomentum, "aggregator's server momentum (SEDNA_AGG_SERVER_MOMENTUM)")
	flag.Parse()
	if err := run(cfg, *arch, *mnistDir); err != nil {
		fmt.Fprintln(os.Stderr, "mnist-fl-measure:", err)
		os.Exit(1)
	}
}

func run(cfg fl.Config, arch, mnistDir string) error {
	var err error
	if cfg.Arch, err = model.ParseArch(arch); err != nil {
		return err
	}
	if mnistDir == "" {
		if mnistDir, err = model.DefaultMNISTDir(); err != nil {
			return err
		}
	}
	train, err := model.LoadTrain(mnistDir)
	if err != nil {
		return err
	}
	test, err := model.LoadTest(mnistDir)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Printf("model %s, %d rounds of %d local epoch(s) on 1/%d of a node's data, batch %d, learning rate %g, momentum %g, server learning rate %g, server momentum %g\n",
		cfg.Arch, cfg.Rounds, cfg.LocalEpochs, cfg.LocalParts, cfg.BatchSize, cfg.LearningRate, cfg.Momentum, cfg.ServerLR, cfg.ServerMomentum)
	m, err := fl.Measure(ctx, train, test, cfg, os.Stdout)
	if err != nil {
		return err
	}
	fmt.Printf("federated after %d rounds: %.2f%%, central: %.2f%% (gap %.2f points); best node alone: %.2f%% (%.0fs)\n",
		cfg.Rounds, 100*m.Final(), 100*m.Central, 100*(m.Central-m.Final()), 100*max(m.Alone[0], m.Alone[1], m.Alone[2]), m.Seconds)
	encoded, err := json.Marshal(m)
	if err != nil {
		return err
	}
	fmt.Printf("RESULT %s\n", encoded)
	return nil
}
