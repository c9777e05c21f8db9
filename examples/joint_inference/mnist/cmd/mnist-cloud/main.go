// Command mnist-cloud is the cloud worker of the MNIST joint inference
// example: it serves the big model (MODEL_URL) with the upstream-compatible
// joint inference protocol, POST /{job}/predict with {"data": [784 pixels
// in 0..1]} answered by {"result": {"label": k, "probs": [10 numbers]}}.
//
// Environment (the contract's names): MODEL_URL (required), JOB_NAME
// (default "sedna"; the URL path segment), BIG_MODEL_BIND_IP (default
// POD_IP, else 0.0.0.0), BIG_MODEL_BIND_PORT (default 5000).
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/internal/worker"
	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/jointinference"
)

func main() {
	klog.InitFlags(nil)
	reloadPeriod := flag.Duration("reload-period", 5*time.Second, "how often to check MODEL_URL for a new model (0 disables hot reload)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := klog.Background().WithName("mnist-cloud")
	ctx = klog.NewContext(ctx, logger)
	if err := run(ctx, env.FromOS(), *reloadPeriod); err != nil {
		logger.Error(err, "Cloud worker failed")
		klog.Flush()
		os.Exit(1)
	}
}

func run(ctx context.Context, vars *env.Context, reloadPeriod time.Duration) error {
	models, err := worker.NewWatcher(vars.ModelURL())
	if err != nil {
		return err
	}
	port, err := vars.BigModelBindPort()
	if err != nil {
		return err
	}
	bindIP := vars.BigModelBindIP()
	if bindIP == "" {
		bindIP = vars.Get(worker.PodIP, "0.0.0.0")
	}
	server, err := jointinference.NewServer(jointinference.ServerOptions{
		Job:       vars.JobName(),
		Predictor: worker.CloudPredictor(models),
		Infos:     []jointinference.ModelInfo{{Path: models.Path(), Name: models.Current().Arch().String()}},
	})
	if err != nil {
		return err
	}
	if reloadPeriod > 0 {
		go models.Run(ctx, reloadPeriod)
	}
	addr := net.JoinHostPort(bindIP, strconv.Itoa(port))
	klog.FromContext(ctx).Info("Serving the cloud model", "addr", addr, "predict", fmt.Sprintf("POST /%s/predict", vars.JobName()),
		"model", models.Path(), "arch", models.Current().Arch().String())
	return server.Run(ctx, addr)
}
