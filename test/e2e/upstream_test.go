//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
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
