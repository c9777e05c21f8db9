package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/sedna-go/sedna/pkg/localcontroller/storage/s3test"
	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/pkg/sdk/federated"
)

// runJob runs the aggregator with environment until one Python-style
// client has trained up to exitRound (resuming at the checkpoint's round
// if there is one) and the aggregator ended, or, with stopAfter > 0, stops
// the aggregator once round stopAfter closed; it returns the round of the
// first aggregate the client received.
func runJob(t *testing.T, environment map[string]string, exitRound, stopAfter int) int {
	t.Helper()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	environment["PARTICIPANTS_COUNT"], environment["JOB_NAME"], environment["EXIT_ROUND"] = "1", "fl-job", strconv.Itoa(exitRound)
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-bind-ip", "127.0.0.1", "-bind-port", freePort(t)}, env.MapLookup(environment), ready)
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
	_, _, err = ws.ReadMessage()
	require.NoError(t, err)
	first := -1
	for {
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte(
			`{"type": "update_weight", "client": "trainworker-1", "data": {"num_samples": 4, "weights": [[1.0, 2.0]]}, "job_name": "fl-job"}`)))
		_, frame, err := ws.ReadMessage()
		require.NoError(t, err)
		var agg struct {
			Data struct {
				RoundNumber int    `json:"round_number"`
				ExitFlag    string `json:"exit_flag"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(frame, &agg), string(frame))
		if first < 0 {
			first = agg.Data.RoundNumber
		}
		if agg.Data.RoundNumber == stopAfter {
			cancel()
			require.ErrorContains(t, <-done, "stopped before training finished")
			_ = ws.Close() // the server is gone
			return first
		}
		if agg.Data.ExitFlag == federated.ExitOK {
			break
		}
	}
	require.NoError(t, ws.Close())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the aggregator did not end after its last client left")
	}
	return first
}

// With MODEL_URL a local file, the final model is written there and the
// checkpoints beside it, from which a later run resumes.
func TestFinalModelAndCheckpointBesideIt(t *testing.T) {
	dir := t.TempDir()
	modelURL := filepath.Join(dir, "models", "global.sflb")
	// Stopped after round 2 of 4: a checkpoint, no model yet.
	require.Equal(t, 1, runJob(t, map[string]string{"MODEL_URL": modelURL}, 4, 2))
	require.Equal(t, 2, loadFile(t, filepath.Join(dir, "models", "checkpoint", federated.CheckpointFile)).Round)
	_, err := os.Stat(modelURL)
	require.ErrorIs(t, err, os.ErrNotExist, "a stopped aggregator writes no final model")

	// Restarted, it resumes after round 2: the reconnected client's first
	// update (built on the initial model) is late and answered with round
	// 2's model, not an earlier one; at the end the model is written.
	require.Equal(t, 2, runJob(t, map[string]string{"MODEL_URL": modelURL}, 4, 0))
	cp := loadFile(t, modelURL)
	require.Equal(t, 4, cp.Round)
	require.True(t, cp.Finished)
	require.Equal(t, federated.Weights{{Shape: []int{2}, Values: []float64{1, 2}}}, cp.Weights)
	require.Equal(t, 4, loadFile(t, filepath.Join(dir, "models", "checkpoint", federated.CheckpointFile)).Round)

	// "none" turns checkpoints off; the model is still written.
	other := filepath.Join(dir, "other", "m.sflb")
	require.Equal(t, 1, runJob(t, map[string]string{"MODEL_URL": other, "SEDNA_AGG_CHECKPOINT_DIR": "none"}, 1, 0))
	require.Equal(t, 1, loadFile(t, other).Round)
	_, err = os.Stat(filepath.Join(dir, "other", "checkpoint"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// With an s3:// MODEL_URL (versitygw), the final model and the default
// checkpoint are S3 objects, and a restarted aggregator resumes from it.
func TestS3ModelAndCheckpoint(t *testing.T) {
	s3 := s3test.Start(t, "fl-models")
	creds := func() map[string]string {
		return map[string]string{"S3_ENDPOINT_URL": "http://" + s3.Endpoint, "ACCESS_KEY_ID": s3.AccessKey, "SECRET_ACCESS_KEY": s3.SecretKey,
			"MODEL_URL": "s3://fl-models/jobs/fl-job/global.sflb"}
	}
	require.Equal(t, 1, runJob(t, creds(), 3, 2))
	checkpoint := loadObject(t, s3.Admin, "jobs/fl-job/checkpoint/"+federated.CheckpointFile)
	require.Equal(t, 2, checkpoint.Round)
	require.False(t, checkpoint.Finished)

	require.Equal(t, 2, runJob(t, creds(), 3, 0), "the restarted aggregator resumes after round 2")
	require.Equal(t, 3, loadObject(t, s3.Admin, "jobs/fl-job/global.sflb").Round)
	require.True(t, loadObject(t, s3.Admin, "jobs/fl-job/checkpoint/"+federated.CheckpointFile).Finished)

	// An explicit s3:// checkpoint prefix.
	environment := creds()
	environment["SEDNA_AGG_CHECKPOINT_DIR"] = "s3://fl-models/elsewhere/"
	require.Equal(t, 1, runJob(t, environment, 1, 0))
	require.Equal(t, 1, loadObject(t, s3.Admin, "elsewhere/"+federated.CheckpointFile).Round)
}

func TestModelAndCheckpointLocationErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"relative model":       {map[string]string{"MODEL_URL": "model.sflb"}, "absolute file path"},
		"relative model dir":   {map[string]string{"MODEL_URL": "models/"}, "absolute file path"},
		"relative checkpoints": {map[string]string{"SEDNA_AGG_CHECKPOINT_DIR": "ckpt"}, "absolute path"},
		"s3 without creds":     {map[string]string{"MODEL_URL": "s3://bkt/m.sflb"}, "needs S3 credentials"},
		"s3 half creds":        {map[string]string{"MODEL_URL": "s3://bkt/m.sflb", "ACCESS_KEY_ID": "a"}, "must be set together"},
	} {
		tc.env["PARTICIPANTS_COUNT"] = "1"
		_, err := parseConfig(nil, env.MapLookup(tc.env))
		require.ErrorContains(t, err, tc.want, name)
	}
}

func loadFile(t *testing.T, path string) *federated.Checkpoint {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	cp, err := federated.UnmarshalCheckpoint(data)
	require.NoError(t, err)
	return cp
}

func loadObject(t *testing.T, admin *minio.Client, key string) *federated.Checkpoint {
	t.Helper()
	object, err := admin.GetObject(context.Background(), "fl-models", key, minio.GetObjectOptions{})
	require.NoError(t, err)
	defer func() { _ = object.Close() }()
	data, err := io.ReadAll(object)
	require.NoError(t, err)
	cp, err := federated.UnmarshalCheckpoint(data)
	require.NoError(t, err)
	return cp
}
