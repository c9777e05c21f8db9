//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sedna-go/sedna/test/e2e/framework"
	"github.com/sedna-go/sedna/test/localcluster"
)

// Upstream's joint inference example YAML (helmet detection; only node names filled in) is
// accepted by the API server, and the workers GM creates from it carry every variable upstream's
// Python library reads. Its images are not run here (they are Python containers).
func TestUpstreamJointInferenceYAML(t *testing.T) {
	ns := framework.NewNamespace(t)
	raw, err := os.ReadFile(filepath.Join(localcluster.RepoRoot(), "pkg", "globalmanager", "controllers", "jointinference", "testdata", "helmet-detection-inference.yaml"))
	require.NoError(t, err)
	// The example names namespace default; this test runs in its own.
	manifest := regexp.MustCompile(`(?m)^\s*namespace: default\n`).ReplaceAllString(string(raw), "")
	framework.ApplyYAML(t, ns, manifest)

	ctx := context.Background()
	want := map[string][]string{
		"helmet-detection-inference-example-deployment-cloud": {"BIG_MODEL_BIND_PORT", "JOB_NAME", "MODEL_URL", "NAMESPACE", "SERVICE_NAME", "WORKER_NAME"},
		"helmet-detection-inference-example-deployment-edge": {"BIG_MODEL_IP", "BIG_MODEL_PORT", "HEM_NAME", "HEM_PARAMETERS", "JOB_NAME",
			"LC_SERVER", "MODEL_URL", "NAMESPACE", "SERVICE_NAME", "WORKER_NAME"},
	}
	for name, vars := range want {
		framework.Eventually(t, time.Minute, "deployment "+name+" with upstream's env", func() (bool, string) {
			d, err := framework.Sedna.Kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			have := map[string]bool{}
			for _, e := range d.Spec.Template.Spec.Containers[0].Env {
				have[e.Name] = true
			}
			var missing []string
			for _, v := range vars {
				if !have[v] {
					missing = append(missing, v)
				}
			}
			sort.Strings(missing)
			return len(missing) == 0, fmt.Sprintf("missing %v", missing)
		})
	}
	_, err = framework.Sedna.Kube.CoreV1().Services(ns).Get(ctx, "helmet-detection-inference-example-cloud", metav1.GetOptions{})
	require.NoError(t, err, "the cloud worker's Service")
}

// Upstream's lifelong learning example (thermal comfort, atcii; node names and the output
// directory changed to this cluster's, which keeps job output below the LC's data root, and its
// trigger's daily window 02:00–24:00 widened to the whole day, so the test does not depend on the
// hour it runs: between midnight and 02:00 the trigger rightly does not fire) is
// accepted by the API server, the LC of the Dataset's node fires its train trigger on the csv, and
// the train pod GM creates carries every variable upstream's Python library reads. Its image is
// not run here (it is a Python container).
func TestUpstreamLifelongLearningYAML(t *testing.T) {
	ns := framework.NewNamespace(t)
	ctx := context.Background()
	node, ok := framework.Sedna.Node("edge-node-2")
	require.True(t, ok)
	raw, err := os.ReadFile(filepath.Join(localcluster.RepoRoot(), "test", "integration", "testdata", "upstream", "example-ll-atcii.yaml"))
	require.NoError(t, err)
	yaml := regexp.MustCompile(`nodeName: edge-node\n`).ReplaceAllString(string(raw), "nodeName: edge-node-2\n")
	yaml = strings.Replace(yaml, `outputDir: "/output"`, `outputDir: "/data/atcii/output"`, 1)
	widened := strings.Replace(yaml, "start: 02:00\n", "start: 00:00\n", 1)
	require.NotEqual(t, yaml, widened, "the example's trigger timer starts at 02:00 no longer")
	yaml = widened
	// 800 rows: 640 reach the train pool, past the example's num_of_samples > 500.
	var csv strings.Builder
	csv.WriteString("Season,Temperature,Humidity,Thermal sensation\n")
	for i := 0; i < 800; i++ {
		fmt.Fprintf(&csv, "%d,%d.5,%d,%d\n", i%4, 18+i%10, 30+i%40, i%7-3)
	}
	require.NoError(t, os.MkdirAll(node.HostPath("/data/atcii/output"), 0o755))
	require.NoError(t, os.WriteFile(node.HostPath("/data/trainData.csv"), []byte(csv.String()), 0o644))
	framework.ApplyYAML(t, ns, yaml)

	want := []string{"HAS_COMPLETED_INITIAL_TRAINING", "JOB_NAME", "KB_SERVER", "LC_SERVER", "NAMESPACE", "ORIGINAL_DATASET_URL",
		"OUTPUT_URL", "TRAIN_DATASET_URL", "WORKER_NAME", "early_stopping_rounds", "metric_name"}
	// The example checks its trigger every 60 s.
	framework.Eventually(t, 3*time.Minute, "the round 1 train pod with upstream's env", func() (bool, string) {
		pod, err := framework.Sedna.Kube.CoreV1().Pods(ns).Get(ctx, "atcii-classifier-demo-train-1", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		have := map[string]string{}
		for _, e := range pod.Spec.Containers[0].Env {
			have[e.Name] = e.Value
		}
		var missing []string
		for _, v := range want {
			if _, ok := have[v]; !ok {
				missing = append(missing, v)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			return false, fmt.Sprintf("missing %v", missing)
		}
		require.Equal(t, "false", have["HAS_COMPLETED_INITIAL_TRAINING"])
		require.Equal(t, "http://kb.sedna:9020", have["KB_SERVER"])
		require.Equal(t, "atcii-classifier-demo", have["JOB_NAME"])
		require.Contains(t, have["TRAIN_DATASET_URL"], "/data/train/1/")
		return true, ""
	})
}
