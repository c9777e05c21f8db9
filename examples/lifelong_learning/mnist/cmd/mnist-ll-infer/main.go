// Command mnist-ll-infer is the inference worker of the MNIST LifelongLearningJob: it serves
// POST /classify {"images": [[784 values in [0,1]], ...]} → {"results": [{"label", "task",
// "unseen", "score"}]} and GET /stats, routing each image to its task's model through the
// deployed index (MODEL_URLS, reloaded when the file changes). Models come from KB_SERVER once
// and are cached, so the worker keeps answering while the knowledge base is down. Unseen images
// are filed as PNGs in OUTPUT_URL/unseen for labelling.
package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/examples/lifelong_learning/mnist/ll"
	"github.com/sedna-go/sedna/pkg/sdk/lifelong"
)

func main() {
	klog.InitFlags(nil)
	listen := flag.String("listen", ":8000", "address of the classification API")
	cacheDir := flag.String("cache-dir", "", "where downloaded models are kept (default OUTPUT_URL/model-cache)")
	poll := flag.Duration("poll", 5*time.Second, "how often the deployed index file is checked for a change")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen, *cacheDir, *poll); err != nil {
		klog.FromContext(ctx).Error(err, "Inference worker failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

func run(ctx context.Context, listen, cacheDir string, poll time.Duration) error {
	logger := klog.FromContext(ctx)
	worker, err := lifelong.NewWorker(lifelong.Options{})
	if err != nil {
		return err
	}
	cfg := worker.Config()
	if err := cfg.Need(lifelong.EnvModelURLs); err != nil {
		return err
	}
	if cacheDir == "" {
		cacheDir = filepath.Join(cfg.OutputURL, "model-cache")
	}
	server := ll.NewInferServer(worker, cfg.ModelURLs[0], cacheDir, filepath.Join(cfg.OutputURL, "unseen"), logger)
	// The index appears once the first round is deployed: wait for it.
	for {
		err := server.Reload(ctx)
		if err == nil {
			break
		}
		logger.Info("Waiting for the deployed index", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
	go server.Watch(ctx, poll)
	listener, err := listenRetrying(ctx, listen, poll)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting for the port
		}
		return err
	}
	httpServer := &http.Server{Handler: server, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = httpServer.Shutdown(shutdown) // stopping anyway
	}()
	logger.Info("Serving", "address", listen, "index", cfg.ModelURLs[0])
	if err := httpServer.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// listenRetrying listens on address, retrying while it is in use: a deploy replaces this worker's
// pod, and where pods share their node's address (hostNetwork, or local Sedna's process nodes)
// the new pod starts before the old one has let the port go. It fails with ctx's error when ctx
// ends first.
func listenRetrying(ctx context.Context, address string, period time.Duration) (net.Listener, error) {
	logger := klog.FromContext(ctx)
	for {
		listener, err := net.Listen("tcp", address)
		if err == nil {
			return listener, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, err
		}
		logger.Info("Address in use, retrying", "address", address)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(period):
		}
	}
}
