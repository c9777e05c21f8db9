//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/test/e2e/framework"
	"github.com/sedna-go/sedna/test/localcluster"
)

// driveResult is the RESULT line of mnist-il-drive.
type driveResult struct {
	Streamed    int     `json:"streamed"`
	StreamFiled int     `json:"streamFiled"`
	Accuracy    float64 `json:"accuracy"`
	Stats       struct {
		ModelVersion int `json:"modelVersion"`
		PID          int `json:"pid"`
	} `json:"stats"`
}

// runResult runs one of the example's programs from the repository (they find MNIST through the
// module cache) and decodes its RESULT line into v.
func runResult(t *testing.T, v any, program string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(framework.Sedna.BinDir(), program), args...)
	cmd.Dir = localcluster.RepoRoot()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %v:\n%s", program, args, out)
	t.Logf("%s %s:\n%s", program, strings.Join(args, " "), out)
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "RESULT "); ok {
			require.NoError(t, json.Unmarshal([]byte(rest), v))
			return
		}
	}
	t.Fatalf("%s printed no RESULT line", program)
}

// The MNIST incremental learning example on the local cluster: the inference worker collects
// hard examples, they are labelled into the dataset, the train trigger fires, GM runs the train
// and eval pods the LC asks for, and the better model reaches the same inference process by hot
// update. The LC is killed during a round's training and the round still completes; a deploy
// trigger the new model cannot meet leaves the served model alone, and a condition says why.
func TestIncrementalLearningMNIST(t *testing.T) {
	ns := framework.NewNamespace(t)
	ctx := context.Background()
	node, ok := framework.Sedna.Node("edge-node-1")
	require.True(t, ok)
	framework.PrepareHostPaths(t, node, filepath.Join(localcluster.RepoRoot(), "examples", "incremental_learning", "mnist", "mnist-incremental-learning.yaml"))
	dataDir := node.HostPath("/data/mnist-il")
	var initial struct {
		TestAccuracy float64 `json:"testAccuracy"`
	}
	runResult(t, &initial, "mnist-il-initial", "--data-dir", dataDir)

	framework.Apply(t, ns, filepath.Join(localcluster.RepoRoot(), "examples", "incremental_learning", "mnist", "mnist-incremental-learning.yaml"))
	jobs := framework.Sedna.Client.SednaV1alpha1().IncrementalLearningJobs(ns)
	job := func() *sednav1.IncrementalLearningJob {
		j, err := jobs.Get(ctx, "mnist-il", metav1.GetOptions{})
		require.NoError(t, err)
		return j
	}
	url := "http://" + node.IP + ":8000"
	framework.Eventually(t, 2*time.Minute, "the inference worker to serve", func() (bool, string) {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	var a0 driveResult
	runResult(t, &a0, "mnist-il-drive", "--url", url)
	require.Equal(t, 1, a0.Stats.ModelVersion)
	require.InDelta(t, initial.TestAccuracy, a0.Accuracy, 1e-9, "the worker serves the initial model")

	accuracies := []float64{a0.Accuracy}
	for round := 1; round <= 2; round++ {
		var streamed driveResult
		runResult(t, &streamed, "mnist-il-drive", "--url", url, "--stream", "3000",
			"--stream-start", fmt.Sprint(10000+3000*(round-1)), "--measure=false")
		require.Positive(t, streamed.StreamFiled, "no hard example was collected")
		var labelled struct {
			Added int `json:"added"`
		}
		runResult(t, &labelled, "mnist-il-label", "--dataset-index", filepath.Join(dataDir, "index.txt"),
			"--hard-examples-dir", filepath.Join(dataDir, "hard-examples"))
		require.Positive(t, labelled.Added)

		if round == 2 {
			// Kill the LC while the round trains; its store brings the round back.
			framework.Eventually(t, 2*time.Minute, "round 2 to start training", func() (bool, string) {
				j := job()
				training := j.Status.StageState == sednav1.StageReady || j.Status.StageState == sednav1.StageStarting || j.Status.StageState == sednav1.StageRunning
				return j.Status.Round == 2 && j.Status.Stage == sednav1.StageTrain && training,
					fmt.Sprintf("round=%d stage=%s/%s", j.Status.Round, j.Status.Stage, j.Status.StageState)
			})
			_, err := framework.Sedna.KillLC("edge-node-1")
			require.NoError(t, err)
			t.Logf("LC killed in round 2 at %s/%s", job().Status.Stage, job().Status.StageState)
		}
		var served driveResult
		runResult(t, &served, "mnist-il-drive", "--url", url, "--wait-version", fmt.Sprint(round+1), "--wait-timeout", "4m")
		require.Equal(t, a0.Stats.PID, served.Stats.PID, "the new model must reach the same inference process")
		accuracies = append(accuracies, served.Accuracy)
	}
	t.Logf("accuracy per round on the 10,000 test images: %v", accuracies)
	require.GreaterOrEqual(t, accuracies[2], accuracies[0]+0.05, "two rounds did not add 5 points")

	j := job()
	deployed := 0
	for _, r := range j.Status.Rounds {
		if r.Deployed {
			deployed++
		}
	}
	require.GreaterOrEqual(t, deployed, 2, "rounds: %+v", j.Status.Rounds)
	table := framework.Kubectl(t, "get", "il", "mnist-il", "-n", ns)
	t.Logf("kubectl get il:\n%s", table)
	require.Regexp(t, `mnist-il\s+2\s+\S+\s+\S+\s+.*accuracy`, table, "kubectl get il shows the round, stage, state and the last round's accuracy")

	// A deploy trigger no model can meet: the round ends without a deploy and says why.
	framework.Kubectl(t, "patch", "il", "mnist-il", "-n", ns, "--type", "json", "-p",
		`[{"op":"replace","path":"/spec/deploySpec/trigger/condition/threshold","value":0.5}]`)
	var streamed driveResult
	runResult(t, &streamed, "mnist-il-drive", "--url", url, "--stream", "3000", "--stream-start", "16000", "--measure=false")
	runResult(t, &struct{}{}, "mnist-il-label", "--dataset-index", filepath.Join(dataDir, "index.txt"),
		"--hard-examples-dir", filepath.Join(dataDir, "hard-examples"))
	framework.Eventually(t, 4*time.Minute, "round 3 to end without a deploy", func() (bool, string) {
		j := job()
		c := apimeta.FindStatusCondition(j.Status.Conditions, sednav1.ConditionDeployed)
		if c == nil {
			return false, "no Deployed condition"
		}
		return c.Status == metav1.ConditionFalse && strings.Contains(c.Message, "round 3") && strings.Contains(c.Message, "accuracy_delta"),
			fmt.Sprintf("round=%d stage=%s/%s Deployed=%s %q", j.Status.Round, j.Status.Stage, j.Status.StageState, c.Status, c.Message)
	})
	var after driveResult
	runResult(t, &after, "mnist-il-drive", "--url", url, "--test-limit", "1000")
	require.Equal(t, 3, after.Stats.ModelVersion, "a rejected model was deployed")
}
