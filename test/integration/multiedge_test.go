package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	lcapp "github.com/sedna-go/sedna/cmd/sedna-lc/app"
	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/config"
	"github.com/sedna-go/sedna/pkg/workerauth"
	"github.com/sedna-go/sedna/test/integration/framework"
)

// multiEdgeChildren are the names of every Deployment, Service and pod in ns, sorted, each as
// "<resource>/<name>=<uid>".
func multiEdgeChildren(t *testing.T, ns string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	deployments, err := controlPlane.Kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, d := range deployments.Items {
		out = append(out, "deployment/"+d.Name+"="+string(d.UID))
	}
	services, err := controlPlane.Kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, s := range services.Items {
		out = append(out, "service/"+s.Name+"="+string(s.UID))
	}
	pods, err := controlPlane.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, p := range pods.Items {
		out = append(out, "pod/"+p.Name+"="+string(p.UID))
	}
	sort.Strings(out)
	return out
}

// names drops the UIDs of multiEdgeChildren.
func names(children []string) []string {
	out := make([]string, 0, len(children))
	for _, c := range children {
		out = append(out, c[:bytes.IndexByte([]byte(c), '=')])
	}
	return out
}

func servicePort(t *testing.T, ns, name string) int32 {
	t.Helper()
	svc, err := controlPlane.Kube.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return svc.Spec.Ports[0].Port
}

// TestMultiEdgeKindsOnTheAPIServer runs a real sedna-gm (with exactly build/gm/rbac.yaml's
// permissions) and a real sedna-lc against the real kube-apiserver. Upstream's multi-edge samples
// and example (test/integration/testdata/upstream, with the fixes their headers document) are
// accepted and GM creates upstream's children, with upstream's names, ports and env, which the
// API server accepts. A deleted child is created again; a GM restart creates no duplicate; a
// feature-extraction worker's report to its LC gets 200 and becomes the service's metrics.
func TestMultiEdgeKindsOnTheAPIServer(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	lcNS := newNamespace(t)
	cert, err := framework.WriteServingCert(dir, "127.0.0.1")
	require.NoError(t, err)
	gmPort, err := framework.FreePort()
	require.NoError(t, err)
	disabled := false
	cfg := &config.Config{
		KubeConfig: gmServiceAccount(t),
		WebSocket: config.WebSocket{Address: "127.0.0.1", Port: gmPort, TLSCertFile: cert.CertFile, TLSKeyFile: cert.KeyFile,
			LCServiceAccounts: []string{lcNS + "/sedna-lc"}},
		LeaderElection: config.LeaderElection{Enabled: &disabled},
		MetricsAddress: "127.0.0.1:0", HealthAddress: "127.0.0.1:0",
	}
	cfg.SetDefaults()
	require.NoError(t, cfg.Validate())
	gm := &restartableGM{t: t, cfg: cfg}
	gm.start()
	t.Cleanup(gm.stop)

	lcPort, err := framework.FreePort()
	require.NoError(t, err)
	rootfs := filepath.Join(dir, "edge1-node")
	require.NoError(t, os.MkdirAll(filepath.Join(rootfs, "data"), 0o755))
	tokenFile := filepath.Join(dir, "edge1.token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(lcToken(t, lcNS, "sedna-lc", "edge1-node", "sedna-gm", true)), 0o600))
	runInBackground(t, "sedna-lc", func(ctx context.Context) error {
		return lcapp.Run(ctx, lcapp.Options{
			GMAddress: fmt.Sprintf("127.0.0.1:%d", gmPort), NodeName: "edge1-node", BindPort: lcPort, BindAddress: "127.0.0.1",
			Rootfs: rootfs, TokenFile: tokenFile, CAFile: cert.CAFile, ServerName: "127.0.0.1", AllowedRoots: []string{"/data"},
		})
	})

	want := map[string][]string{
		"example-multiedge-pedestrian-tracking.yaml": {
			"deployment/feature-extraction-deployment-fe",
			"pod/reid-reid-1", "pod/video-analytics-videoanalytics-1",
			"service/feature-extraction-fe", "service/reid-reid", "service/video-analytics-videoanalytics",
		},
		"sample-objectsearchservice.yaml": {
			"deployment/pedestrian-search-deployment-reidworker", "deployment/pedestrian-search-deployment-userworker",
			"pod/pedestrian-search-trackingworker-0", "pod/pedestrian-search-trackingworker-1",
			"service/pedestrian-search-reidworker", "service/pedestrian-search-userworker",
		},
		"sample-objecttrackingservice.yaml": {
			"deployment/pedestrian-tracking-deployment-reidworker",
			"pod/pedestrian-tracking-trackingworker-0", "pod/pedestrian-tracking-trackingworker-1",
			"service/pedestrian-tracking-reidworker",
		},
	}
	namespaces := map[string]string{}
	for file := range want {
		ns := newNamespace(t)
		namespaces[file] = ns
		for _, obj := range loadUpstreamFixture(t, file) {
			_, err := controlPlane.Dynamic.Resource(upstreamResource(t, obj)).Namespace(ns).Create(ctx, obj,
				metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
			require.NoError(t, err, "%s: %s %s refused", file, obj.GetKind(), obj.GetName())
		}
	}
	for file, children := range want {
		ns := namespaces[file]
		require.Eventually(t, func() bool { return slices.Equal(children, names(multiEdgeChildren(t, ns))) },
			60*time.Second, 100*time.Millisecond, "%s: GM did not create upstream's children", file)
	}

	// Ports and env (literal values; references as in flPodEnv).
	pedestrians := namespaces["example-multiedge-pedestrian-tracking.yaml"]
	require.Equal(t, int32(6000), servicePort(t, pedestrians, "feature-extraction-fe"))
	require.Equal(t, int32(5000), servicePort(t, pedestrians, "reid-reid"))
	require.Equal(t, int32(4000), servicePort(t, pedestrians, "video-analytics-videoanalytics"))
	fe, err := controlPlane.Kube.AppsV1().Deployments(pedestrians).Get(ctx, "feature-extraction-deployment-fe", metav1.GetOptions{})
	require.NoError(t, err)
	feEnv := flPodEnv(&corev1.Pod{Spec: fe.Spec.Template.Spec})
	for name, value := range map[string]string{
		"KAFKA_ENABLED": "true", "NAMESPACE": pedestrians, "SERVICE_NAME": "feature-extraction", "WORKER_NAME": "field:metadata.name",
		"MODEL_URL": "/home/data/data/ai_models/m3l/m3l.pth", "LC_SERVER": "http://$(SEDNA_HOST_IP):9100",
		"KAFKA_BIND_PORTS": "9092|9092", "SEDNA_WORKER_TOKEN": "secret:feature-extraction-featureextractionservice-worker-token/token",
	} {
		require.Equal(t, value, feEnv[name], "feature extraction env %s", name)
	}
	pod := func(ns, name string) *corev1.Pod {
		p, err := controlPlane.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		return p
	}
	vaEnv := flPodEnv(pod(pedestrians, "video-analytics-videoanalytics-1"))
	for name, value := range map[string]string{
		"KAFKA_ENABLED": "true", "JOB_NAME": "video-analytics", "NAMESPACE": pedestrians, "MODEL_NAME": "detection-pedestrians-yolox",
		"MODEL_URL": "/home/data/data/ai_models/object_detection/pedestrians/yolox.pth", "fps": "5",
	} {
		require.Equal(t, value, vaEnv[name], "video analytics env %s", name)
	}
	reidEnv := flPodEnv(pod(pedestrians, "reid-reid-1"))
	require.Equal(t, "reid", reidEnv["JOB_NAME"])
	require.NotContains(t, reidEnv, "KAFKA_ENABLED", "kafkaSupport false sets no KAFKA_ENABLED")
	search := namespaces["sample-objectsearchservice.yaml"]
	require.Equal(t, int32(9378), servicePort(t, search, "pedestrian-search-reidworker"))
	require.Equal(t, int32(9379), servicePort(t, search, "pedestrian-search-userworker"))
	trackerEnv := flPodEnv(pod(search, "pedestrian-search-trackingworker-0"))
	require.Equal(t, "pedestrian-search-userworker."+search+":9379", trackerEnv["USERWORKER_URL"])
	require.Equal(t, "pedestrian-search-reidworker."+search+":9378", trackerEnv["EDGEMESH_URL"])
	tracking := namespaces["sample-objecttrackingservice.yaml"]
	require.Equal(t, "pedestrian-tracking-reidworker."+tracking+":9378",
		flPodEnv(pod(tracking, "pedestrian-tracking-trackingworker-1"))["EDGEMESH_URL"])

	// Status: feature extraction Running (upstream's was Failed from its second sync on), jobs
	// Pending until their pod runs (no kubelet here), search and tracking with per-group readiness.
	require.Eventually(t, func() bool {
		got, err := controlPlane.Sedna.SednaV1alpha1().FeatureExtractionServices(pedestrians).Get(ctx, "feature-extraction", metav1.GetOptions{})
		return err == nil && got.Status.Phase == sednav1.PhaseRunning && meta.FindStatusCondition(got.Status.Conditions, sednav1.ConditionReady) != nil
	}, 30*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool {
		got, err := controlPlane.Sedna.SednaV1alpha1().ObjectSearchServices(search).Get(ctx, "pedestrian-search", metav1.GetOptions{})
		if err != nil {
			return false
		}
		c := meta.FindStatusCondition(got.Status.Conditions, "TrackingWorkersReady")
		return c != nil && c.Message == "trackingworker 0/2 ready"
	}, 30*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool {
		got, err := controlPlane.Sedna.SednaV1alpha1().VideoAnalyticsJobs(pedestrians).Get(ctx, "video-analytics", metav1.GetOptions{})
		return err == nil && got.Status.Phase == sednav1.PhasePending && got.Status.Active == 1
	}, 30*time.Second, 100*time.Millisecond)

	// Deleted children are created again.
	require.NoError(t, controlPlane.Kube.AppsV1().Deployments(pedestrians).Delete(ctx, "feature-extraction-deployment-fe", metav1.DeleteOptions{}))
	require.NoError(t, controlPlane.Kube.CoreV1().Pods(search).Delete(ctx, "pedestrian-search-trackingworker-1", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	for file, children := range want {
		ns := namespaces[file]
		require.Eventually(t, func() bool { return slices.Equal(children, names(multiEdgeChildren(t, ns))) },
			60*time.Second, 100*time.Millisecond, "%s: a deleted child was not created again", file)
	}

	// A GM restart creates no duplicate: the same children with the same UIDs, except the one
	// deleted after the restart, which shows the new GM synced.
	before := map[string][]string{}
	for file, ns := range namespaces {
		before[file] = multiEdgeChildren(t, ns)
	}
	gm.stop()
	gm.start()
	require.NoError(t, controlPlane.Kube.CoreV1().Pods(tracking).Delete(ctx, "pedestrian-tracking-trackingworker-0", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	require.Eventually(t, func() bool {
		p, err := controlPlane.Kube.CoreV1().Pods(tracking).Get(ctx, "pedestrian-tracking-trackingworker-0", metav1.GetOptions{})
		return err == nil && p.DeletionTimestamp == nil
	}, 60*time.Second, 100*time.Millisecond, "the restarted GM did not recreate the deleted tracking worker")
	for file, ns := range namespaces {
		after := multiEdgeChildren(t, ns)
		if file != "sample-objecttrackingservice.yaml" {
			require.Equal(t, before[file], after, "%s: the restarted GM changed children", file)
			continue
		}
		require.Equal(t, names(before[file]), names(after))
		changed := 0
		for i := range after {
			if after[i] != before[file][i] {
				changed++
			}
		}
		require.Equal(t, 1, changed, "only the deleted tracking worker is new")
	}

	// A feature-extraction worker on edge1-node reports to its LC with the service's worker
	// token: 200, and the report becomes the service's metrics. (No controller manager runs the
	// Deployment here, so the worker's pod is created as its ReplicaSet would, with its labels.)
	feService, err := controlPlane.Sedna.SednaV1alpha1().FeatureExtractionServices(pedestrians).Get(ctx, "feature-extraction", metav1.GetOptions{})
	require.NoError(t, err)
	worker := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "feature-extraction-fe-worker", Namespace: pedestrians, Labels: map[string]string{
			"featureextractionservice.sedna.io/name": "feature-extraction", "featureextractionservice.sedna.io/uid": string(feService.UID),
			"featureextractionservice.sedna.io/worker-type": "fe",
		}},
		Spec: corev1.PodSpec{NodeName: "edge1-node", Containers: []corev1.Container{{Name: "fe", Image: "fe:v1",
			Env: []corev1.EnvVar{{Name: "WORKER_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}}},
	}
	_, err = controlPlane.Kube.CoreV1().Pods(pedestrians).Create(ctx, worker, metav1.CreateOptions{})
	require.NoError(t, err)
	secret, err := controlPlane.Kube.CoreV1().Secrets(pedestrians).Get(ctx, "feature-extraction-featureextractionservice"+workerauth.TokenSecretSuffix, metav1.GetOptions{})
	require.NoError(t, err)
	token := string(secret.Data[workerauth.TokenKey])
	report := func() int {
		code, _ := sendWorkerReport(lcPort, worker.Name, token, map[string]any{
			"name": worker.Name, "namespace": pedestrians, "ownerName": "feature-extraction", "ownerKind": "featureextractionservice",
			"kind": "inference", "status": "running", "ownerInfo": map[string]any{"extractedFeatures": 42, "updateTime": "2026-12-05 06:01:00"},
		}) // an unreachable LC gives 0, retried below
		return code
	}
	require.Eventually(t, func() bool { return report() == http.StatusOK }, 30*time.Second, 100*time.Millisecond,
		"the LC did not take the feature extraction worker's report")
	require.Eventually(t, func() bool {
		got, err := controlPlane.Sedna.SednaV1alpha1().FeatureExtractionServices(pedestrians).Get(ctx, "feature-extraction", metav1.GetOptions{})
		return err == nil && slices.Equal(got.Status.Metrics, []sednav1.Metric{{Key: "extractedFeatures", Value: "42"}})
	}, 30*time.Second, 100*time.Millisecond, "the report did not become the service's metrics")
}

// sendWorkerReport sends a worker's report to the LC's worker API as upstream's library does and
// returns the outcome: the HTTP status, or — since the LC answers HTTP 200 also to a report it
// drops, as upstream's does — the status in the answer's body. No Authorization header when token
// is "".
func sendWorkerReport(lcPort int, worker, token string, report map[string]any) (int, error) {
	body, err := json.Marshal(report)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/sedna/workers/%s/info", lcPort, worker), bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	var outcome struct{ Status int }
	if err := json.NewDecoder(resp.Body).Decode(&outcome); err != nil {
		return 0, fmt.Errorf("reading the LC's answer: %w", err)
	}
	return outcome.Status, nil
}
