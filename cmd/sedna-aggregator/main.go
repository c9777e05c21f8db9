// Command sedna-aggregator is a ready-made aggregation worker of a
// FederatedLearningJob: it runs pkg/sdk/federated's server with the
// configuration GM gives the aggregation pod, so the job's image only needs
// this binary. It serves upstream's protocol on AGG_BIND_PORT, writes the
// final global model to MODEL_URL, ends with status 0 once training is over
// and the trainers have gone, and resumes from its checkpoint after a
// restart.
//
// Configuration (environment; every variable also has a flag, which wins):
//
//	AGG_BIND_IP (all interfaces), AGG_BIND_PORT (7363)   listen address
//	JOB_NAME (sedna), PARTICIPANTS_COUNT (required)      from GM
//	NAMESPACE, SEDNA_JOB_UID (none)                      from GM: recorded in checkpoints, checked on resume
//	EXIT_ROUND or exit_round (3)                         rounds to train (upstream's parameter)
//	AGGREGATION or aggregation (FedAvg)                  FedAvg or Mean; also the URL path
//	SEDNA_AGG_MIN_CLIENTS (PARTICIPANTS_COUNT)           round quorum
//	SEDNA_AGG_ROUND_DEADLINE (none)                      seconds or a duration, from a round's first update
//	SEDNA_AGG_TARGET_METRIC (none)                       e.g. accuracy>=0.97
//	SEDNA_AGG_SERVER_LR (1), SEDNA_AGG_SERVER_MOMENTUM (0) server optimizer (FedAvgM); the defaults are plain FedAvg
//	MODEL_URL (none)                                     where the final global model goes: a file path or an s3:// object;
//	                                                     a directory (existing, or ending in "/") gets global-model.sflb inside
//	SEDNA_AGG_CHECKPOINT_DIR (beside MODEL_URL)          checkpoint after every round; resume on start; "none": never
//	S3_ENDPOINT_URL, ACCESS_KEY_ID, SECRET_ACCESS_KEY    credentials for s3:// MODEL_URL and checkpoints (from GM)
//	SEDNA_AGG_EXIT_GRACE (none)                          end this long after training even if clients stay
//	                                                     (until then, also wait for every participant to get the end)
//	SEDNA_AGG_TOKEN (none), SEDNA_AGG_COMPAT (true)      admission: the job's token; admit clients without one
//	                                                     (COMPAT=false without a token refuses to start)
//	SEDNA_AGG_MAX_JSON_BYTES (16 MiB), SEDNA_AGG_MAX_BINARY_BYTES (1 GiB)
//
// GET /<aggregation>/status answers the round, the finish state and the
// counters (late, missing clients of the last round) as JSON.
//
// Files: the final model (MODEL_URL) and the checkpoints are
// federated.Checkpoint files (an SFLB frame of float64 values with the round,
// metrics and finish state, and a CRC-32). The checkpoint is by default
// <directory of MODEL_URL>/checkpoint/global-model.sflb (when MODEL_URL
// is a directory, such as the /model GM mounts for upstream's Model: the
// model is <MODEL_URL>/global-model.sflb and the checkpoint
// <MODEL_URL>/checkpoint/global-model.sflb; for
// s3://bucket/models/global.sflb: s3://bucket/models/checkpoint/
// global-model.sflb), so a restarted aggregator resumes wherever its model
// is kept; without MODEL_URL nothing is written. The checkpoint records the
// job's NAMESPACE and SEDNA_JOB_UID when they are set; a checkpoint
// recording another namespace or UID (an earlier job of the same name) is
// refused and the aggregator does not start: delete it to start over. A
// checkpoint without them (older, or either variable unset) is resumed.
//
// The defaults otherwise reproduce upstream's aggregator: every round waits
// for every participant and anyone may connect.
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
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/federated"
)

func main() {
	klog.InitFlags(nil)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.LookupEnv, nil)
	stop()
	if err != nil {
		klog.ErrorS(err, "Aggregator failed")
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

// Our variables; upstream's come from package env and federated.
const (
	envBindIP         = "AGG_BIND_IP"
	envExitRound      = "exit_round"
	envAggregation    = "aggregation"
	envMinClients     = "SEDNA_AGG_MIN_CLIENTS"
	envRoundDeadline  = "SEDNA_AGG_ROUND_DEADLINE"
	envTargetMetric   = "SEDNA_AGG_TARGET_METRIC"
	envCheckpointDir  = "SEDNA_AGG_CHECKPOINT_DIR"
	envServerLR       = "SEDNA_AGG_SERVER_LR"
	envServerMomentum = "SEDNA_AGG_SERVER_MOMENTUM"
	envModelURL       = "MODEL_URL"
	noCheckpoints     = "none"
	envExitGrace      = "SEDNA_AGG_EXIT_GRACE"
	envCompat         = "SEDNA_AGG_COMPAT"
	envMaxJSONBytes   = "SEDNA_AGG_MAX_JSON_BYTES"
	envMaxBinaryBytes = "SEDNA_AGG_MAX_BINARY_BYTES"
	// envJobUID is the job's UID (GM sets it; upstream's GM does not).
	envJobUID           = "SEDNA_JOB_UID"
	defaultExitRound    = 3
	readHeaderTimeout   = 10 * time.Second
	shutdownGracePeriod = 5 * time.Second
	modelWriteTimeout   = 5 * time.Minute
)

type config struct {
	bindAddr      string
	modelURL      string
	checkpointDir string
	options       federated.ServerOptions
	// model is where the final model goes (nil without MODEL_URL).
	model federated.CheckpointStore
}

// parseConfig reads the environment, then flags override it.
func parseConfig(args []string, lookup env.Lookup) (*config, error) {
	environment := env.New(lookup)
	getenv := func(key string) string {
		value, _ := lookup(key)
		return value
	}
	fs := flag.NewFlagSet("sedna-aggregator", flag.ContinueOnError)
	bindIP := fs.String("bind-ip", environment.Get(envBindIP, ""), "listen address ("+envBindIP+"); empty means all interfaces")
	bindPort := fs.String("bind-port", environment.Get(federated.EnvAggBindPort, strconv.Itoa(federated.DefaultAggPort)), "listen port ("+federated.EnvAggBindPort+")")
	job := fs.String("job", environment.JobName(), "job name (JOB_NAME)")
	participants := fs.String("participants", environment.Get(federated.EnvParticipantsCount, ""), "number of training workers ("+federated.EnvParticipantsCount+")")
	exitRound := fs.String("exit-round", environment.Get(envExitRound, strconv.Itoa(defaultExitRound)), "rounds to train (EXIT_ROUND)")
	algorithm := fs.String("aggregation", environment.Get(envAggregation, federated.AlgorithmFedAvg), "aggregation algorithm: FedAvg or Mean (AGGREGATION)")
	minClients := fs.String("min-clients", environment.Get(envMinClients, "0"), "quorum of a round; 0 means every participant ("+envMinClients+")")
	deadline := fs.String("round-deadline", environment.Get(envRoundDeadline, ""), "close a round with its quorum this long after its first update ("+envRoundDeadline+")")
	target := fs.String("target-metric", environment.Get(envTargetMetric, ""), "stop once the round's client metric reaches name>=value or name<=value ("+envTargetMetric+")")
	modelURL := fs.String("model-url", environment.Get(envModelURL, ""), "where the final global model goes: a file path or an s3:// object ("+envModelURL+")")
	checkpointDir := fs.String("checkpoint-dir", environment.Get(envCheckpointDir, ""), "directory or s3:// prefix of the per-round checkpoint; default beside the model, none for no checkpoints ("+envCheckpointDir+")")
	exitGrace := fs.String("exit-grace", environment.Get(envExitGrace, ""), "end this long after training even if clients stay connected ("+envExitGrace+")")
	compat := fs.String("compat", environment.Get(envCompat, "true"), "admit clients that send no token, as upstream's Python clients ("+envCompat+")")
	maxJSON := fs.String("max-json-bytes", environment.Get(envMaxJSONBytes, ""), "largest JSON message ("+envMaxJSONBytes+")")
	serverLR := fs.String("server-lr", environment.Get(envServerLR, "1"), "server learning rate: the next global model is global + lr·velocity ("+envServerLR+")")
	serverMomentum := fs.String("server-momentum", environment.Get(envServerMomentum, "0"), "server momentum in [0, 1) (FedAvgM); 0 with lr 1 is plain FedAvg ("+envServerMomentum+")")
	maxBinary := fs.String("max-binary-bytes", environment.Get(envMaxBinaryBytes, ""), "largest binary message ("+envMaxBinaryBytes+")")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	// Each value goes through the same parser as the environment, so a flag
	// and a variable mean the same thing.
	values := map[string]string{
		federated.EnvAggBindPort: *bindPort, federated.EnvParticipantsCount: *participants, "EXIT_ROUND": *exitRound,
		envMinClients: *minClients, envRoundDeadline: *deadline, envExitGrace: *exitGrace, envCompat: *compat,
		envMaxJSONBytes: *maxJSON, envMaxBinaryBytes: *maxBinary,
	}
	parsed := env.New(env.MapLookup(values))
	port, err := parsed.Port(federated.EnvAggBindPort, federated.DefaultAggPort)
	if err != nil {
		return nil, err
	}
	cfg := &config{bindAddr: net.JoinHostPort(*bindIP, strconv.Itoa(port)), modelURL: *modelURL, checkpointDir: *checkpointDir}
	opts := &cfg.options
	opts.Job = *job
	// Both optional: they tie the checkpoint to this job object.
	opts.Namespace, opts.JobUID = environment.Namespace(), environment.Get(envJobUID, "")
	if *participants == "" {
		return nil, errors.New("environment variable " + federated.EnvParticipantsCount + " is not set: how many trainers does the job have?")
	}
	if opts.Policy.Participants, err = parsed.Int(federated.EnvParticipantsCount, 0); err != nil {
		return nil, err
	}
	if opts.Policy.ExitRound, err = parsed.Int("EXIT_ROUND", defaultExitRound); err != nil {
		return nil, err
	}
	if opts.Policy.MinClients, err = parsed.Int(envMinClients, 0); err != nil {
		return nil, err
	}
	if opts.Policy.RoundDeadline, err = parsed.Seconds(envRoundDeadline, 0); err != nil {
		return nil, err
	}
	if *target != "" {
		if opts.Policy.Target, err = federated.ParseTargetMetric(*target); err != nil {
			return nil, err
		}
	}
	if opts.Aggregator, err = federated.AggregatorByName(*algorithm); err != nil {
		return nil, err
	}
	if opts.ServerOptimizer.LR, err = parseFloat(envServerLR, *serverLR); err != nil {
		return nil, err
	}
	if opts.ServerOptimizer.Momentum, err = parseFloat(envServerMomentum, *serverMomentum); err != nil {
		return nil, err
	}
	if err := opts.ServerOptimizer.Validate(); err != nil {
		return nil, fmt.Errorf("%s/%s: %w", envServerLR, envServerMomentum, err)
	}
	if opts.ExitGrace, err = parsed.Seconds(envExitGrace, 0); err != nil {
		return nil, err
	}
	opts.Admission.Token = environment.Get(federated.EnvToken, "")
	if opts.Admission.AllowAnonymous, err = parsed.Bool(envCompat, true); err != nil {
		return nil, err
	}
	if !opts.Admission.AllowAnonymous && opts.Admission.Token == "" {
		// Without a token nobody can be told apart: everyone would be
		// admitted although compatibility mode is off.
		return nil, fmt.Errorf("%s=false admits only clients presenting the job's token, but %s is not set: set it, or set %s=true to admit upstream's clients",
			envCompat, federated.EnvToken, envCompat)
	}
	maxJSONBytes, err := parsed.Int(envMaxJSONBytes, 0)
	if err != nil {
		return nil, err
	}
	maxBinaryBytes, err := parsed.Int(envMaxBinaryBytes, 0)
	if err != nil {
		return nil, err
	}
	opts.MaxJSONMessageBytes, opts.MaxBinaryMessageBytes = int64(maxJSONBytes), int64(maxBinaryBytes)
	places := &stores{getenv: getenv}
	if cfg.modelURL != "" {
		cfg.modelURL = resolveModelURL(cfg.modelURL)
		if cfg.model, err = places.file(cfg.modelURL); err != nil {
			return nil, err
		}
		if cfg.checkpointDir == "" {
			cfg.checkpointDir = besideModel(cfg.modelURL)
		}
	}
	if cfg.checkpointDir == noCheckpoints {
		cfg.checkpointDir = ""
	}
	if cfg.checkpointDir != "" {
		if opts.Store, err = places.dir(cfg.checkpointDir); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// run serves until training is over and the clients left, or ctx ends.
// ready, when set, receives the listen address.
func run(ctx context.Context, args []string, lookup env.Lookup, ready chan<- string) error {
	cfg, err := parseConfig(args, lookup)
	if err != nil {
		return fmt.Errorf("configuring the aggregator: %w", err)
	}
	logger := klog.FromContext(ctx)
	server, err := federated.NewServer(ctx, cfg.options)
	if err != nil {
		return err
	}
	listener, err := net.Listen("tcp", cfg.bindAddr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.bindAddr, err)
	}
	policy := cfg.options.Policy
	logger.Info("Aggregator listening", "address", listener.Addr().String(), "path", server.Path(), "job", cfg.options.Job,
		"participants", policy.Participants, "minClients", policy.MinClients, "roundDeadline", policy.RoundDeadline,
		"exitRound", policy.ExitRound, "target", policy.Target, "checkpointDir", cfg.checkpointDir,
		"token", cfg.options.Admission.Token != "", "compat", cfg.options.Admission.AllowAnonymous, "modelURL", cfg.modelURL)
	if ready != nil {
		ready <- listener.Addr().String()
	}
	httpServer := &http.Server{Handler: server, ReadHeaderTimeout: readHeaderTimeout}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(listener) }()

	var result error
	select {
	case <-server.Done():
	case <-ctx.Done():
		logger.Info("Stopping on signal")
		// A stopped job is not a finished one: a non-zero status keeps a
		// killed aggregator from looking Succeeded.
		if !server.Stats().Finished {
			result = fmt.Errorf("stopped before training finished: %w", context.Cause(ctx))
		}
	case err := <-serveErr:
		result = fmt.Errorf("serving: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGracePeriod)
	defer cancel()
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		logger.Error(err, "Shutting the HTTP server down")
	}
	server.Close()
	if err := writeModel(ctx, cfg, server); err != nil {
		result = errors.Join(result, err)
	}
	stats := server.Stats()
	logger.Info("Aggregator ended", "round", stats.Round, "finished", stats.Finished, "reason", stats.Reason,
		"late", stats.Late, "duplicate", stats.Duplicate, "invalid", stats.Invalid, "roundsClosedShort", stats.RoundsClosedShort,
		"checkpointErrors", stats.CheckpointErrors, "metrics", stats.Metrics)
	return result
}

// writeModel writes the final global model to MODEL_URL once training is
// over (a stopped aggregator leaves the model of an earlier finished run
// alone).
func writeModel(ctx context.Context, cfg *config, server *federated.Server) error {
	if cfg.model == nil || !server.Stats().Finished {
		return nil
	}
	cp := server.Checkpoint()
	if cp == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), modelWriteTimeout)
	defer cancel()
	if err := cfg.model.Save(ctx, cp); err != nil {
		return fmt.Errorf("writing the final model to %s: %w", cfg.modelURL, err)
	}
	klog.FromContext(ctx).Info("Wrote the final model", "url", cfg.modelURL, "round", cp.Round, "metrics", cp.Metrics)
	return nil
}

// parseFloat parses the value of the variable name (or its flag).
func parseFloat(name, value string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not a number", name, value)
	}
	return f, nil
}
