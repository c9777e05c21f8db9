// Command pedestrians-fe is the pedestrian example's feature extraction service (the worker of a
// FeatureExtractionService): /feature_extraction/ on POD_IP:FE_MODEL_BIND_PORT (6000).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/examples/multiedge_inference/pedestrians/pipeline"
	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/multiedge"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, env.FromOS()); err != nil {
		klog.ErrorS(err, "Feature extraction worker failed")
		os.Exit(1)
	}
}

func run(ctx context.Context, vars *env.Context) error {
	cfg, err := multiedge.ConfigFromEnv(vars)
	if err != nil {
		return err
	}
	if path := vars.Get(env.ModelURL, ""); path != "" {
		if _, err := pipeline.ReadModel(path, pipeline.ModelAppearance); err != nil {
			return err
		}
	}
	server, err := multiedge.NewFeatureExtractionServer(multiedge.ExtractFeature, cfg.ServerOptions())
	if err != nil {
		return err
	}
	addr := cfg.BindAddress(cfg.FEPort)
	klog.FromContext(ctx).Info("Serving feature extraction", "address", addr)
	return server.Run(ctx, addr)
}
