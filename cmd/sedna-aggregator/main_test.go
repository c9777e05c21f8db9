package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/federated"
)

func TestParseConfigDefaultsReproduceUpstream(t *testing.T) {
	cfg, err := parseConfig(nil, env.MapLookup(map[string]string{
		"AGG_BIND_PORT": "7363", "PARTICIPANTS_COUNT": "3", "JOB_NAME": "fl-job", "WORKER_NAME": "aggworker-x", "NAMESPACE": "default",
		"MODEL_URL": "/model", "TRANSMITTER": "ws",
	}))
	require.NoError(t, err)
	require.Equal(t, ":7363", cfg.bindAddr)
	opts := cfg.options
	require.Equal(t, "fl-job", opts.Job)
	require.Equal(t, federated.Policy{Participants: 3, ExitRound: defaultExitRound}, opts.Policy)
	require.Equal(t, federated.AlgorithmFedAvg, opts.Aggregator.Name())
	require.Equal(t, federated.Admission{AllowAnonymous: true}, opts.Admission)
	// MODEL_URL is where the final model goes; the checkpoint is beside it.
	require.Equal(t, federated.DirStore{Dir: "/", File: "model"}, cfg.model)
	require.Equal(t, federated.DirStore{Dir: "/checkpoint"}, opts.Store)
	require.Zero(t, opts.ExitGrace)
	require.True(t, opts.ServerOptimizer.Plain(), "the default server optimizer is plain FedAvg: %+v", opts.ServerOptimizer)
}

func TestParseConfigServerOptimizer(t *testing.T) {
	cfg, err := parseConfig([]string{"-server-lr", "1.5"}, env.MapLookup(map[string]string{
		"PARTICIPANTS_COUNT": "3", "SEDNA_AGG_SERVER_LR": "0.5", "SEDNA_AGG_SERVER_MOMENTUM": " 0.9 ",
	}))
	require.NoError(t, err)
	require.Equal(t, federated.ServerOptimizer{LR: 1.5, Momentum: 0.9}, cfg.options.ServerOptimizer)
}

func TestParseConfigExtensions(t *testing.T) {
	cfg, err := parseConfig([]string{"-min-clients", "2", "-exit-grace", "90s"}, env.MapLookup(map[string]string{
		"PARTICIPANTS_COUNT": "3", "exit_round": "20", "aggregation": "Mean", "SEDNA_AGG_MIN_CLIENTS": "3",
		"SEDNA_AGG_ROUND_DEADLINE": "45", "SEDNA_AGG_TARGET_METRIC": "accuracy>=0.9", "SEDNA_AGG_CHECKPOINT_DIR": "/ckpt",
		"SEDNA_AGG_TOKEN": "s3cret", "SEDNA_AGG_COMPAT": "false", "AGG_BIND_IP": "10.0.0.1", "SEDNA_AGG_MAX_BINARY_BYTES": "1048576",
	}))
	require.NoError(t, err)
	require.Equal(t, "10.0.0.1:7363", cfg.bindAddr)
	opts := cfg.options
	require.Equal(t, federated.Policy{Participants: 3, MinClients: 2, RoundDeadline: 45 * time.Second, ExitRound: 20,
		Target: &federated.TargetMetric{Name: "accuracy", Value: 0.9}}, opts.Policy)
	require.Equal(t, federated.AlgorithmMean, opts.Aggregator.Name())
	require.Equal(t, federated.Admission{Token: "s3cret"}, opts.Admission)
	require.Equal(t, federated.DirStore{Dir: "/ckpt"}, opts.Store)
	require.Equal(t, 90*time.Second, opts.ExitGrace)
	require.Equal(t, int64(1<<20), opts.MaxBinaryMessageBytes)
}

func TestParseConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"no participants":  {map[string]string{}, "PARTICIPANTS_COUNT is not set"},
		"bad participants": {map[string]string{"PARTICIPANTS_COUNT": "three"}, "not an integer"},
		"bad port":         {map[string]string{"PARTICIPANTS_COUNT": "1", "AGG_BIND_PORT": "70000"}, "not a TCP port"},
		"bad deadline":     {map[string]string{"PARTICIPANTS_COUNT": "1", "SEDNA_AGG_ROUND_DEADLINE": "soon"}, "neither seconds nor a duration"},
		"bad target":       {map[string]string{"PARTICIPANTS_COUNT": "1", "SEDNA_AGG_TARGET_METRIC": "accuracy"}, "name>=value"},
		"bad algorithm":    {map[string]string{"PARTICIPANTS_COUNT": "1", "aggregation": "MistNet"}, "MistNet"},
		"bad compat":       {map[string]string{"PARTICIPANTS_COUNT": "1", "SEDNA_AGG_COMPAT": "maybe"}, "not a boolean"},
		// Nobody could be refused: the aggregator must not start.
		"compat off, no token": {map[string]string{"PARTICIPANTS_COUNT": "1", "SEDNA_AGG_COMPAT": "false"}, "SEDNA_AGG_COMPAT=false admits only clients presenting the job's token, but SEDNA_AGG_TOKEN is not set"},
		"bad server lr":        {map[string]string{"PARTICIPANTS_COUNT": "1", "SEDNA_AGG_SERVER_LR": "fast"}, `SEDNA_AGG_SERVER_LR="fast" is not a number`},
		"negative lr":          {map[string]string{"PARTICIPANTS_COUNT": "1", "SEDNA_AGG_SERVER_LR": "-1"}, "server learning rate -1"},
		"momentum one":         {map[string]string{"PARTICIPANTS_COUNT": "1", "SEDNA_AGG_SERVER_MOMENTUM": "1"}, "server momentum 1 must be in [0, 1)"},
	} {
		_, err := parseConfig(nil, env.MapLookup(tc.env))
		require.ErrorContains(t, err, tc.want, name)
	}
	// Policy errors surface from run.
	err := run(context.Background(), nil, env.MapLookup(map[string]string{"PARTICIPANTS_COUNT": "2", "SEDNA_AGG_MIN_CLIENTS": "3"}), nil)
	require.ErrorContains(t, err, "minimum clients")
}

// The program serves one Python-style client through a whole job, writes
// its checkpoint and ends by itself.
func TestRunEndsAfterTraining(t *testing.T) {
	dir := t.TempDir()
	runOneJob(t, map[string]string{"PARTICIPANTS_COUNT": "1", "JOB_NAME": "fl-job", "EXIT_ROUND": "2", "SEDNA_AGG_CHECKPOINT_DIR": dir})
	_, err := os.Stat(filepath.Join(dir, federated.CheckpointFile))
	require.NoError(t, err)
}

// GM mounts a Model whose url is a directory (upstream's "/model") as that
// directory: the final model goes inside it, and so does the checkpoint;
// the checkpoint records the job's namespace and UID.
func TestRunWritesModelInsideModelDirectory(t *testing.T) {
	mount := t.TempDir()
	runOneJob(t, map[string]string{"PARTICIPANTS_COUNT": "1", "JOB_NAME": "fl-job", "EXIT_ROUND": "2", "MODEL_URL": mount,
		"NAMESPACE": "team-a", "SEDNA_JOB_UID": "uid-1"})
	ctx := context.Background()
	final, err := federated.DirStore{Dir: mount, File: "global-model.sflb"}.Load(ctx)
	require.NoError(t, err)
	require.NotNil(t, final, "the final model is %s/global-model.sflb", mount)
	require.Equal(t, 2, final.Round)
	require.True(t, final.Finished)
	checkpoint, err := federated.DirStore{Dir: filepath.Join(mount, "checkpoint")}.Load(ctx)
	require.NoError(t, err)
	require.NotNil(t, checkpoint)
	require.Equal(t, "team-a", checkpoint.Namespace)
	require.Equal(t, "uid-1", checkpoint.JobUID)

	// The same job name with another UID refuses that checkpoint.
	err = run(ctx, []string{"-bind-ip", "127.0.0.1", "-bind-port", freePort(t)}, env.MapLookup(map[string]string{
		"PARTICIPANTS_COUNT": "1", "JOB_NAME": "fl-job", "MODEL_URL": mount, "NAMESPACE": "team-a", "SEDNA_JOB_UID": "uid-2"}), nil)
	require.ErrorContains(t, err, "UID uid-1, this job's UID is uid-2")

	// A path ending in "/" is a directory even before it exists.
	cfg, err := parseConfig(nil, env.MapLookup(map[string]string{"PARTICIPANTS_COUNT": "1", "MODEL_URL": "/not-yet/model/"}))
	require.NoError(t, err)
	require.Equal(t, federated.DirStore{Dir: "/not-yet/model", File: "global-model.sflb"}, cfg.model)
	require.Equal(t, federated.DirStore{Dir: "/not-yet/model/checkpoint"}, cfg.options.Store)
	// So is an s3:// prefix.
	cfg, err = parseConfig(nil, env.MapLookup(map[string]string{"PARTICIPANTS_COUNT": "1", "MODEL_URL": "s3://bkt/models/",
		"S3_ENDPOINT_URL": "http://127.0.0.1:1", "ACCESS_KEY_ID": "a", "SECRET_ACCESS_KEY": "b"}))
	require.NoError(t, err)
	require.Equal(t, "s3://bkt/models/global-model.sflb", cfg.model.(objectStore).url)
	require.Equal(t, "s3://bkt/models/checkpoint/global-model.sflb", cfg.options.Store.(objectStore).url)
}

// runOneJob runs the aggregator with variables for a one-trainer job that
// a Python-style client trains to the end.
func runOneJob(t *testing.T, variables map[string]string) {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	port := freePort(t)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-bind-ip", "127.0.0.1", "-bind-port", port}, env.MapLookup(variables), ready)
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("the aggregator ended before listening: %v", err)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/FedAvg", nil)
	require.NoError(t, err)
	require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(`{"type": "subscribe", "client_id": "trainworker-1"}`)))
	_, ack, err := ws.ReadMessage()
	require.NoError(t, err)
	require.Equal(t, `{"type":"subscribe","client_id":"trainworker-1"}`, string(ack))
	for round := 1; round <= 2; round++ {
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(
			`{"type": "update_weight", "client": "trainworker-1", "data": {"num_samples": 4, "weights": [[1.0, 2.0]]}, "job_name": "fl-job"}`)))
		_, frame, err := ws.ReadMessage()
		require.NoError(t, err)
		require.Contains(t, string(frame), `"type":"recv_weight"`)
		if round == 2 {
			require.Contains(t, string(frame), `"exit_flag":"ok"`)
		}
	}
	require.NoError(t, ws.Close())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the aggregator did not end after its last client left")
	}
}

func TestRunStoppedBeforeTheEndFails(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-bind-ip", "127.0.0.1", "-bind-port", freePort(t)}, env.MapLookup(map[string]string{"PARTICIPANTS_COUNT": "2"}), ready)
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("the aggregator ended before listening: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		require.ErrorContains(t, err, "stopped before training finished")
	case <-time.After(30 * time.Second):
		t.Fatal("the aggregator did not stop")
	}
}

func freePort(t *testing.T) string {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(listener.Addr().String())
	require.NoError(t, err)
	require.NoError(t, listener.Close())
	return port
}
