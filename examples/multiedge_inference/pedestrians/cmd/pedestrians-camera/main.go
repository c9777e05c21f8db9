// Command pedestrians-camera is one camera of the pedestrian example: it renders its camera's
// frames from the scene (standing in for the video stream), detects and tracks people, gets
// appearance features and global identities, and appends every frame's result to
// $OUTPUT_DIR/<camera>.jsonl, resuming after the last frame written when it is restarted.
//
// MODE=videoanalytics (a VideoAnalyticsJob's worker, the default) asks the feature extraction
// service (FE_MODEL_BIND_URL:FE_MODEL_BIND_PORT) and the ReID job (REID_MODEL_BIND_URL:
// REID_MODEL_BIND_PORT), serves /video_analytics/ on POD_IP:DET_MODEL_BIND_PORT, reports to the
// LC and exits when the stream ends. MODE=tracking (a tracking worker of an ObjectSearchService
// or ObjectTrackingService) extracts features itself, sends tracks to the service's reid workers
// (GALLERY_URL, else EDGEMESH_URL, else <SERVICE_NAME>-reidworker.<NAMESPACE>:9378) and stays up when the stream
// ends.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/examples/multiedge_inference/pedestrians/pipeline"
	"github.com/sedna-go/sedna/examples/multiedge_inference/pedestrians/scene"
	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/lc"
	"github.com/sedna-go/sedna/pkg/sdk/multiedge"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, env.FromOS()); err != nil {
		klog.ErrorS(err, "Camera worker failed")
		os.Exit(1)
	}
}

func run(ctx context.Context, vars *env.Context) error {
	logger := klog.FromContext(ctx)
	cfg, err := multiedge.ConfigFromEnv(vars)
	if err != nil {
		return err
	}
	sceneConfig, err := pipeline.SceneFromEnv(vars)
	if err != nil {
		return err
	}
	camera, err := vars.Int(pipeline.EnvCamera, 0)
	if err != nil {
		return err
	}
	if camera < 0 || camera >= sceneConfig.Cameras {
		return fmt.Errorf("%s=%d: the scene has cameras 0 to %d", pipeline.EnvCamera, camera, sceneConfig.Cameras-1)
	}
	interval, err := vars.Seconds("FRAME_INTERVAL", 40*time.Millisecond)
	if err != nil {
		return err
	}
	mode := vars.Get("MODE", "videoanalytics")
	outputDir := vars.Get("OUTPUT_DIR", "")
	if outputDir == "" {
		return errors.New("OUTPUT_DIR is not set: the worker needs a directory for its results")
	}
	sc, err := scene.New(sceneConfig)
	if err != nil {
		return err
	}
	name := scene.CameraName(camera)
	var analyzer *pipeline.Analyzer
	switch mode {
	case "videoanalytics":
		analyzer = pipeline.NewAnalyzer(name, sc.Background(camera),
			pipeline.RemoteFeatures(multiedge.NewClient(cfg.FE, cfg.Token, nil)), multiedge.NewClient(cfg.ReID, cfg.Token, nil))
		if path := vars.Get(env.ModelURL, ""); path != "" {
			model, err := pipeline.ReadModel(path, pipeline.ModelDetector)
			if err != nil {
				return err
			}
			analyzer.Tune(model)
		}
		server, err := multiedge.NewVideoAnalyticsServer(analyzer, cfg.ServerOptions())
		if err != nil {
			return err
		}
		go func() {
			if err := server.Run(ctx, cfg.BindAddress(cfg.DetPort)); err != nil {
				logger.Error(err, "Video analytics server stopped")
			}
		}()
	case "tracking":
		gallery := vars.Get("GALLERY_URL", vars.Get("EDGEMESH_URL", ""))
		if gallery == "" {
			gallery = fmt.Sprintf("%s-reidworker.%s:9378", vars.Get(env.ServiceName, ""), vars.Get(env.Namespace, "default"))
		}
		if !strings.Contains(gallery, "://") {
			gallery = "http://" + gallery
		}
		analyzer = pipeline.NewAnalyzer(name, sc.Background(camera), pipeline.LocalFeatures, multiedge.NewClient(gallery, cfg.Token, nil))
	default:
		return fmt.Errorf("MODE=%q: want videoanalytics or tracking", mode)
	}

	path := pipeline.ResultsFile(outputDir, name)
	done, err := pipeline.ReadResults(path)
	if err != nil {
		return err
	}
	// Rewrite the file without a torn last line, then append.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = out.Close() }() // every line is synced below
	encoder := json.NewEncoder(out)
	for _, result := range done {
		if err := encoder.Encode(result); err != nil {
			return err
		}
	}
	start := len(done)
	analyzer.Resume(done)
	logger.Info("Camera stream", "camera", name, "mode", mode, "frames", sceneConfig.Frames, "resumeAt", start)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	detections := 0
	for frame := start; frame < sceneConfig.Frames; frame++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
		img, _ := sc.Render(camera, frame)
		result, err := analyzer.Process(ctx, frame, img)
		if err != nil {
			return err
		}
		detections += len(result.Detections)
		if err := encoder.Encode(result); err != nil {
			return err
		}
		if err := out.Sync(); err != nil {
			return err
		}
	}
	if err := analyzer.EndOfStream(ctx, sceneConfig.Frames-1); err != nil {
		return err
	}
	logger.Info("Camera stream ended", "camera", name, "framesThisRun", sceneConfig.Frames-start, "detections", detections)
	if mode == "tracking" {
		<-ctx.Done()
		return nil
	}
	report(ctx, vars, name, sceneConfig.Frames, detections)
	return nil
}

// report tells the LC the job's worker completed; a failure is logged, not fatal: the results
// are on disk.
func report(ctx context.Context, vars *env.Context, camera string, frames, detections int) {
	worker := vars.Get(env.WorkerName, "")
	if worker == "" {
		return
	}
	client, err := lc.New(lc.Options{Server: vars.Get(env.LCServer, env.DefaultLCServer), Worker: worker, Attempts: 2, Interval: time.Second})
	if err == nil {
		job := vars.Get(env.JobName, env.DefaultJobName)
		err = client.Report(ctx, lc.Message{
			Name: worker, Namespace: vars.Get(env.Namespace, job), OwnerName: job, OwnerKind: "videoanalyticsjob",
			Kind: lc.KindInference, Status: "completed",
			OwnerInfo: map[string]any{"camera": camera, "frames": frames, "detections": detections},
		})
	}
	if err != nil {
		klog.FromContext(ctx).Error(err, "Reporting to the LC failed")
	}
}
