// Command pedestrians-reid is the pedestrian example's identity gallery: /reid/ on
// POD_IP:REID_MODEL_BIND_PORT (5000 for the ReidJob; 9378 for the reid workers of an
// ObjectSearchService or ObjectTrackingService). With CAMERAS=a,b,c (the ReidJob) it exits
// once every listed camera has ended its stream; without, it serves until stopped.
package main

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/multiedge"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, env.FromOS()); err != nil {
		klog.ErrorS(err, "ReID worker failed")
		os.Exit(1)
	}
}

func run(ctx context.Context, vars *env.Context) error {
	logger := klog.FromContext(ctx)
	cfg, err := multiedge.ConfigFromEnv(vars)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := cfg.ServerOptions()
	if cameras := vars.Get("CAMERAS", ""); cameras != "" {
		var mu sync.Mutex
		pending := map[string]bool{}
		for _, camera := range strings.Split(cameras, ",") {
			pending[strings.TrimSpace(camera)] = true
		}
		opts.OnEndOfStream = func(camera string) {
			mu.Lock()
			defer mu.Unlock()
			delete(pending, camera)
			logger.Info("Camera ended its stream", "camera", camera, "pending", len(pending))
			if len(pending) == 0 {
				// Let the last answer go out before shutting down.
				time.AfterFunc(time.Second, cancel)
			}
		}
	}
	gallery := multiedge.NewGallery(multiedge.GalleryOptions{})
	server, err := multiedge.NewReIDServer(gallery, opts)
	if err != nil {
		return err
	}
	addr := cfg.BindAddress(cfg.ReIDPort)
	logger.Info("Serving ReID", "address", addr)
	if err := server.Run(ctx, addr); err != nil {
		return err
	}
	logger.Info("ReID done", "identities", gallery.Len())
	return nil
}
