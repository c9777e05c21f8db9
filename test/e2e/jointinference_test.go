//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/test/e2e/framework"
	"github.com/sedna-go/sedna/test/localcluster"
	"github.com/sedna-go/sedna/test/localsedna"
)

// commandTimeout bounds one run of an example's program (a hung worker must fail the test, not
// the whole suite at its timeout).
const commandTimeout = 5 * time.Minute

// evalResult is the RESULT line of mnist-eval.
type evalResult = localsedna.MNISTEvalResult

func mnistEval(t *testing.T, args ...string) evalResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	result, out, err := localsedna.RunMNISTEval(ctx, filepath.Join(framework.Sedna.BinDir(), "mnist-eval"), args...)
	require.NoError(t, err, out)
	t.Logf("mnist-eval %s:\n%s", strings.Join(args, " "), out)
	return result
}

// installMNISTModels trains the example's models once and puts them on the workers' nodes.
func installMNISTModels(t *testing.T) string {
	t.Helper()
	out, err := framework.Sedna.InstallMNISTModels(context.Background())
	require.NoError(t, err)
	if out != "" {
		t.Logf("mnist-train:\n%s", out)
	}
	return localsedna.MNISTModelDir()
}

// The MNIST example on the local cluster: GM creates the workers, the edge worker answers the
// test set with the cloud's help for hard examples, its reports reach status through the LC, a
// hung cloud makes the edge fall back, and offloading resumes when it returns. Then GM is
// killed and restarted and nothing is duplicated.
func TestJointInferenceMNIST(t *testing.T) {
	ns := framework.NewNamespace(t)
	ctx := context.Background()
	models := installMNISTModels(t)
	offline := mnistEval(t, "--edge-model", filepath.Join(models, "edge.model"), "--cloud-model", filepath.Join(models, "cloud.model"), "--thresholds", "0.7")

	framework.Apply(t, ns, filepath.Join(localcluster.RepoRoot(), "examples", "joint_inference", "mnist", "mnist-joint-inference.yaml"))
	jis := framework.Sedna.Client.SednaV1alpha1().JointInferenceServices(ns)
	framework.Eventually(t, 2*time.Minute, "the joint inference service to be Ready", func() (bool, string) {
		ji, err := jis.Get(ctx, "mnist-ji", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return apimeta.IsStatusConditionTrue(ji.Status.Conditions, sednav1.ConditionReady), fmt.Sprintf("conditions=%v", ji.Status.Conditions)
	})
	edge, _ := framework.Sedna.Node("edge-node-1")
	edgeURL := "http://" + edge.IP + ":8000"
	framework.Eventually(t, time.Minute, "the edge worker's API", func() (bool, string) {
		resp, err := http.Get(edgeURL + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})

	online := mnistEval(t, "--edge-url", edgeURL)
	require.Equal(t, 10000, online.Images)
	t.Logf("edge only %.2f%%, cloud only %.2f%%, joint %.2f%% with %.1f%% sent to the cloud",
		100*offline.EdgeAccuracy, 100*offline.CloudAccuracy, 100*online.Accuracy, 100*online.CloudShare)
	require.GreaterOrEqual(t, online.Accuracy, offline.EdgeAccuracy+0.03, "joint accuracy is not 3 points above the edge's")
	require.LessOrEqual(t, online.CloudShare, 0.40)
	require.Zero(t, online.Fallbacks, "the cloud was up, yet the edge fell back")

	framework.Eventually(t, time.Minute, "the edge's report in status.metrics", func() (bool, string) {
		ji, err := jis.Get(ctx, "mnist-ji", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		n, _ := localsedna.MetricValue(ji, "inferenceNumber")
		ratio, ok := localsedna.MetricValue(ji, "uploadCloudRatio")
		return n >= 10000 && ok && ratio > 0 && ratio <= 0.40, fmt.Sprintf("metrics=%v", ji.Status.Metrics)
	})

	// A hung cloud worker: the edge answers by itself after its deadline and counts fallbacks.
	cloudPID, err := localsedna.FindProcess(func(argv []string) bool { return filepath.Base(argv[0]) == "mnist-cloud" })
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(cloudPID, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(cloudPID, syscall.SIGCONT) }) // if the test fails while it is stopped
	hung := mnistEval(t, "--edge-url", edgeURL, "--limit", "200")
	require.NoError(t, syscall.Kill(cloudPID, syscall.SIGCONT))
	require.Positive(t, hung.Fallbacks, "no fallback while the cloud was hung")
	require.Equal(t, hung.Fallbacks, hung.Sources["edge-fallback"])
	require.Zero(t, hung.Sources["cloud"])

	back := mnistEval(t, "--edge-url", edgeURL, "--limit", "500")
	require.Positive(t, back.Sources["cloud"], "offloading did not resume")
	require.Zero(t, back.Fallbacks)

	// GM killed and restarted: it reconciles the same children, no duplicates.
	require.NoError(t, framework.Sedna.KillGM())
	require.NoError(t, framework.Sedna.StartGM(ctx))
	require.NoError(t, framework.Sedna.WaitForLCs(ctx))
	mnistEval(t, "--edge-url", edgeURL, "--limit", "300")
	framework.Eventually(t, time.Minute, "status.metrics to count the inferences after GM's restart", func() (bool, string) {
		ji, err := jis.Get(ctx, "mnist-ji", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		n, _ := localsedna.MetricValue(ji, "inferenceNumber")
		return n >= 10000+200+500+300, fmt.Sprintf("metrics=%v", ji.Status.Metrics)
	})
	deployments, err := framework.Sedna.Kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, deployments.Items, 2, "deployments: %v", names(deployments.Items))
	pods, err := framework.Sedna.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	running := 0
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			running++
		}
	}
	require.Equal(t, 2, running, "running pods after GM's restart")
}

func names(items []appsv1.Deployment) []string {
	var out []string
	for _, d := range items {
		out = append(out, d.Name)
	}
	return out
}
