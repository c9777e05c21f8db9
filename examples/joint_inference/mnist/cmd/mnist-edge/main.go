// Command mnist-edge is the edge worker of the MNIST joint inference
// example. It classifies images with the little model (MODEL_URL), sends
// the ones its hard example miner flags to the cloud worker, reports its
// counters to the local controller and serves applications:
//
//	POST /classify {"images": [[784 pixels in 0..1], ...]}
//	  -> {"results": [{"label": k, "source": "edge"|"cloud"|"edge-fallback", "hard": bool}]}
//	GET  /stats    -> {"inferenceNumber", "hardExampleNumber", "uploadCloudRatio", "fallbacks"}
//	GET  /healthz
//
// Environment (the contract's names unless noted): MODEL_URL (required);
// BIG_MODEL_IP (required), BIG_MODEL_PORT (5000); JOB_NAME ("sedna", the
// cloud URL path); HEM_NAME (default CrossEntropy), HEM_PARAMETERS (JSON
// [{"key","value"}]); MINING_MODE (only inference-then-mining); LC_SERVER
// (http://127.0.0.1:9100), LC_PERIOD (30 s), WORKER_NAME (reports are off
// when unset), NAMESPACE, SERVICE_NAME (report owner; JOB_NAME when unset);
// EDGE_BIND_ADDRESS (this example's own; default $POD_IP:8000, else
// 0.0.0.0:8000).
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
	"strconv"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/internal/worker"
	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/hem"
	"github.com/sedna-go/sedna/pkg/sdk/jointinference"
	"github.com/sedna-go/sedna/pkg/sdk/lc"
)

// EdgeBindAddress is where the application API listens.
const EdgeBindAddress = "EDGE_BIND_ADDRESS"

type options struct {
	cloudDeadline time.Duration
	parallelism   int
	reloadPeriod  time.Duration
}

func main() {
	klog.InitFlags(nil)
	var opts options
	flag.DurationVar(&opts.cloudDeadline, "cloud-deadline", 2*time.Second, "longest wait for the cloud on one hard example before the edge answers itself")
	flag.IntVar(&opts.parallelism, "parallelism", 4, "images of one /classify request processed at once")
	flag.DurationVar(&opts.reloadPeriod, "reload-period", 5*time.Second, "how often to check MODEL_URL for a new model (0 disables hot reload)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := klog.Background().WithName("mnist-edge")
	ctx = klog.NewContext(ctx, logger)
	if err := run(ctx, env.FromOS(), opts); err != nil {
		logger.Error(err, "Edge worker failed")
		klog.Flush()
		os.Exit(1)
	}
}

func run(ctx context.Context, vars *env.Context, opts options) error {
	logger := klog.FromContext(ctx)
	models, err := worker.NewWatcher(vars.ModelURL())
	if err != nil {
		return err
	}
	miner, hemName, err := newMiner(vars)
	if err != nil {
		return err
	}
	mode, err := vars.MiningMode()
	if err != nil {
		return err
	}
	if mode != env.MiningInferenceThenMining {
		return fmt.Errorf("%s=%s is not supported: this example mines the edge model's class probabilities, so only %s applies",
			env.MiningMode, mode, env.MiningInferenceThenMining)
	}
	cloudIP := vars.BigModelIP()
	if cloudIP == "" {
		return fmt.Errorf("%s is not set: the edge needs the cloud worker's address", env.BigModelIP)
	}
	cloudPort, err := vars.BigModelPort()
	if err != nil {
		return err
	}
	edge, err := jointinference.NewEdge(jointinference.EdgeOptions{
		Job:           vars.JobName(),
		CloudURL:      "http://" + net.JoinHostPort(cloudIP, strconv.Itoa(cloudPort)),
		Model:         worker.EdgeModel(models),
		Miner:         miner,
		MiningMode:    mode,
		CloudDeadline: opts.cloudDeadline,
		HTTPClient: &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConnsPerHost: opts.parallelism,
			IdleConnTimeout:     90 * time.Second,
		}},
	})
	if err != nil {
		return err
	}
	if err := startReporter(ctx, vars, edge); err != nil {
		return err
	}
	if opts.reloadPeriod > 0 {
		go models.Run(ctx, opts.reloadPeriod)
	}

	addr := vars.Get(EdgeBindAddress, "")
	if addr == "" {
		addr = net.JoinHostPort(vars.Get(worker.PodIP, "0.0.0.0"), "8000")
	}
	var listenConfig net.ListenConfig
	listener, err := listenConfig.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for applications on %s (%s): %w", addr, EdgeBindAddress, err)
	}
	server := &http.Server{
		Handler:           worker.NewEdgeAPI(edge, opts.parallelism),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	logger.Info("Serving applications", "addr", listener.Addr().String(), "cloud", edge.CloudPredictURL(),
		"hem", hemName, "model", models.Path(), "arch", models.Current().Arch().String())
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving applications on %s: %w", addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down the application API: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving applications on %s: %w", addr, err)
	}
	return nil
}

// newMiner builds the hard example miner. CrossEntropy is the default
// because the edge model's output is a class probability vector, which is
// what it judges; Threshold and IBT judge detection boxes and do not apply.
func newMiner(vars *env.Context) (hem.Miner, string, error) {
	name := vars.HEMName()
	if name == "" {
		name = hem.NameCrossEntropy
	}
	params, err := vars.HEMParameters()
	if err != nil {
		return nil, "", err
	}
	if name == hem.NameIBT || name == hem.NameThreshold {
		return nil, "", fmt.Errorf("%s=%s judges detection boxes; this classifier yields class probabilities, use %s (or %s, %s, %s)",
			env.HEMName, name, hem.NameCrossEntropy, hem.NameRandom, hem.NameCloudOnly, hem.NameEdgeOnly)
	}
	miner, err := hem.NewRegistry().New(name, params)
	if err != nil {
		return nil, "", err
	}
	return miner, name, nil
}

// startReporter runs the LC reporter when the worker has a name to report
// under; outside a cluster there is none and reporting is skipped.
func startReporter(ctx context.Context, vars *env.Context, edge *jointinference.Edge) error {
	logger := klog.FromContext(ctx)
	workerName := vars.WorkerName()
	if workerName == "" {
		logger.Info("WORKER_NAME is not set; not reporting to the local controller")
		return nil
	}
	period, err := vars.LCPeriod()
	if err != nil {
		return err
	}
	client, err := lc.New(lc.Options{Server: vars.LCServerURL(), Worker: workerName})
	if err != nil {
		return err
	}
	owner := vars.ServiceName()
	if owner == "" {
		owner = vars.JobName()
	}
	go func() {
		err := edge.RunReporter(ctx, jointinference.ReporterOptions{
			Reporter:  client,
			Period:    period,
			Name:      workerName,
			Namespace: vars.Namespace(),
			OwnerName: owner,
		})
		if err != nil {
			logger.Error(err, "Reporter stopped")
		}
	}()
	logger.Info("Reporting to the local controller", "endpoint", client.Endpoint(), "period", period, "owner", owner)
	return nil
}
