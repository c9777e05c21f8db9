// Command mnist-il-infer is the inference worker of the MNIST IncrementalLearningJob (image
// sedna-example/mnist-il-infer:v0.1). It serves MODEL_URL, swaps in every model the LC deploys
// (MODEL_HOT_UPDATE, MODEL_HOT_UPDATE_CONFIG, MODEL_POLL_PERIOD_SECONDS; reported to the LC as kind
// deploy) without a restart, and files the images the hard example miner (HEM_NAME,
// HEM_PARAMETERS; default CrossEntropy) calls hard as PNGs in HARD_EXAMPLES_DIR with an index.txt.
//
// API on INFER_BIND_ADDRESS (default $POD_IP:8000, else 0.0.0.0:8000): POST /classify
// {"images": [[784 numbers in [0,1]], ...]} (?collect=false files nothing), GET /stats, GET /healthz.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/examples/incremental_learning/mnist/il"
	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/hem"
	sdk "github.com/sedna-go/sedna/pkg/sdk/incrementallearning"
)

// Environment variables of this example (the others are the SDK's).
const (
	InferBindAddress = "INFER_BIND_ADDRESS"
	HardExamplesDir  = "HARD_EXAMPLES_DIR"
	PodIP            = "POD_IP"
	// DefaultHardExamplesDir is where the YAML mounts the node's /data/mnist-il/hard-examples.
	DefaultHardExamplesDir = "/hard-examples"
)

func main() {
	klog.InitFlags(nil)
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "mnist-il-infer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	worker, err := sdk.NewWorker(sdk.Options{})
	if err != nil {
		return err
	}
	vars := worker.Env()
	modelURL := vars.ModelURL()
	if modelURL == "" {
		return fmt.Errorf("%s is not set", env.ModelURL)
	}
	if info, err := os.Stat(modelURL); err == nil && info.IsDir() {
		modelURL = filepath.Join(modelURL, il.ModelFile)
	}
	miner, hemName, err := newMiner(worker)
	if err != nil {
		return err
	}
	collector, err := sdk.NewHardExampleCollector(vars.Get(HardExamplesDir, DefaultHardExamplesDir), "")
	if err != nil {
		return err
	}
	defer func() { _ = collector.Close() }() // a directory handle only
	server := il.NewServer(miner, collector)
	if err := server.Load(ctx, modelURL); err != nil {
		return err
	}

	configPath := vars.Get(sdk.EnvModelHotUpdateConfig, "")
	updater, err := sdk.NewHotUpdater(sdk.HotUpdaterOptions{Worker: worker, Load: func(ctx context.Context, path string) error {
		return server.Load(ctx, il.ResolveHotUpdatePath(path, configPath))
	}})
	if err != nil {
		return err
	}
	go func() {
		if err := updater.Run(ctx); err != nil {
			logger.Error(err, "Model hot update stopped")
		}
	}()

	addr := vars.Get(InferBindAddress, "")
	if addr == "" {
		addr = net.JoinHostPort(vars.Get(PodIP, "0.0.0.0"), "8000")
	}
	var listenConfig net.ListenConfig
	listener, err := listenConfig.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s (%s): %w", addr, InferBindAddress, err)
	}
	httpServer := &http.Server{
		Handler:           server,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	logger.Info("Serving", "addr", listener.Addr().String(), "model", modelURL, "hem", hemName,
		"hardExamples", collector.IndexPath(), "hotUpdate", updater.Enabled(), "hotUpdateConfig", configPath)
	served := make(chan error, 1)
	go func() { served <- httpServer.Serve(listener) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving on %s: %w", addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving on %s: %w", addr, err)
	}
	return nil
}

// newMiner builds the job's miner; CrossEntropy (threshold 0.7) when the job names none, because
// the model's output is a class probability vector, which is what it judges.
func newMiner(worker *sdk.Worker) (hem.Miner, string, error) {
	if worker.Env().HEMName() == "" {
		return &hem.CrossEntropy{Threshold: 0.7}, hem.NameCrossEntropy, nil
	}
	miner, err := worker.HardExampleMiner(nil)
	if err != nil {
		return nil, "", err
	}
	return miner, worker.Env().HEMName(), nil
}
