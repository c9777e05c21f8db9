package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/sedna-go/sedna/cmd/sedna-gm/app"
	lcapp "github.com/sedna-go/sedna/cmd/sedna-lc/app"
	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/config"
	"github.com/sedna-go/sedna/pkg/workerauth"
	"github.com/sedna-go/sedna/test/integration/framework"
)

// restartableGM runs sedna-gm until stopped, and can be started again with the same config.
type restartableGM struct {
	t      *testing.T
	cfg    *config.Config
	cancel context.CancelFunc
	done   chan error
}

func (g *restartableGM) start() {
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel, g.done = cancel, make(chan error, 1)
	go func() { g.done <- app.Run(ctx, g.cfg, "gm") }()
}

func (g *restartableGM) stop() {
	if g.cancel == nil {
		return
	}
	g.cancel()
	select {
	case <-g.done: //nolint:errcheck // stopped on purpose
	case <-time.After(30 * time.Second):
		g.t.Fatal("sedna-gm did not stop within 30s")
	}
	g.cancel = nil
}

// flPodEnv is the env of a pod's first container by name (literal values; references as
// "secret:<name>/<key>" or "field:<path>").
func flPodEnv(pod *corev1.Pod) map[string]string {
	out := map[string]string{}
	for _, e := range pod.Spec.Containers[0].Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			out[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		case e.ValueFrom.FieldRef != nil:
			out[e.Name] = "field:" + e.ValueFrom.FieldRef.FieldPath
		}
	}
	return out
}

// flWorkerPods are the pods of the named job, by name.
func flWorkerPods(t *testing.T, ns, job string) map[string]*corev1.Pod {
	t.Helper()
	pods, err := controlPlane.Kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: "federatedlearningjob.sedna.io/name=" + job})
	require.NoError(t, err)
	out := map[string]*corev1.Pod{}
	for i := range pods.Items {
		out[pods.Items[i].Name] = &pods.Items[i]
	}
	return out
}

// TestFederatedLearningJobOnTheAPIServer runs a real sedna-gm, with exactly the permissions of
// build/gm/rbac.yaml, and a real sedna-lc on edge1-node against the real kube-apiserver. Each of
// upstream's federated examples (image names as upstream wrote them) is accepted and GM creates
// its Service and worker pods, which the API server accepts, carrying the env upstream's Python
// library reads. A training worker's round report to its LC gets 200 and reaches the job's status
// and the aggregation Model. A GM restart creates no second pod, and a deleted worker comes back.
func TestFederatedLearningJobOnTheAPIServer(t *testing.T) {
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
	lcOpts := lcapp.Options{
		GMAddress: fmt.Sprintf("127.0.0.1:%d", gmPort), NodeName: "edge1-node", BindPort: lcPort, BindAddress: "127.0.0.1",
		Rootfs: rootfs, TokenFile: tokenFile, CAFile: cert.CAFile, ServerName: "127.0.0.1", AllowedRoots: []string{"/data"},
	}
	runInBackground(t, "sedna-lc", func(ctx context.Context) error { return lcapp.Run(ctx, lcOpts) })

	type example struct {
		file, job, transmitter string
	}
	examples := []example{
		{"example-fl-surface-defect.yaml", "surface-defect-detection", "ws"},
		{"example-fl-surface-defect-v2.yaml", "", "ws"},
		{"example-fl-yolov5-mistnet.yaml", "yolo-v5", "s3"},
	}
	namespaces := map[string]string{}
	for _, ex := range examples {
		ns := newNamespace(t)
		namespaces[ex.file] = ns
		job := ""
		for _, obj := range loadUpstreamFixture(t, ex.file) {
			_, err := controlPlane.Dynamic.Resource(upstreamResource(t, obj)).Namespace(ns).Create(ctx, obj,
				metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
			require.NoError(t, err, "%s: %s %s refused", ex.file, obj.GetKind(), obj.GetName())
			if obj.GetKind() == "FederatedLearningJob" {
				job = obj.GetName()
			}
		}
		require.NotEmpty(t, job)
		t.Run(ex.file, func(t *testing.T) {
			agg, train0, train1 := job+"-aggregation", job+"-train-0", job+"-train-1"
			var pods map[string]*corev1.Pod
			require.Eventually(t, func() bool {
				pods = flWorkerPods(t, ns, job)
				return len(pods) == 3
			}, 60*time.Second, 100*time.Millisecond, "GM did not create the three workers of %s", job)
			svc, err := controlPlane.Kube.CoreV1().Services(ns).Get(ctx, job+"-aggregation", metav1.GetOptions{})
			require.NoError(t, err)
			require.Equal(t, int32(7363), svc.Spec.Ports[0].Port)

			aggEnv := flPodEnv(pods[agg])
			for name, want := range map[string]string{
				"NAMESPACE": ns, "WORKER_NAME": agg, "JOB_NAME": job, "AGG_BIND_PORT": "7363", "PARTICIPANTS_COUNT": "2",
				"TRANSMITTER": ex.transmitter, "SEDNA_AGG_TOKEN": "secret:" + job + "-federatedlearningjob-worker-token/token", "SEDNA_AGG_COMPAT": "true",
			} {
				require.Equal(t, want, aggEnv[name], "aggregation worker env %s", name)
			}
			require.NotEmpty(t, aggEnv["MODEL_URL"])
			flJob, err := controlPlane.Sedna.SednaV1alpha1().FederatedLearningJobs(ns).Get(ctx, job, metav1.GetOptions{})
			require.NoError(t, err)
			require.NotEmpty(t, flJob.UID)
			require.Equal(t, string(flJob.UID), aggEnv["SEDNA_JOB_UID"], "the aggregator knows its job's UID")
			for name, pod := range pods {
				for _, v := range pod.Spec.Volumes {
					if v.HostPath != nil {
						require.NotEqual(t, "/", v.HostPath.Path, "pod %s mounts the node's root filesystem", name)
					}
				}
			}
			require.Equal(t, "cloud-node", pods[agg].Spec.NodeName)
			for i, name := range []string{train0, train1} {
				pod := pods[name]
				env := flPodEnv(pod)
				for key, want := range map[string]string{
					"AGG_IP": job + "-aggregation." + ns, "AGG_PORT": "7363", "WORKER_NAME": name, "JOB_NAME": job,
					"PARTICIPANTS_COUNT": "2", "NAMESPACE": ns, "TRANSMITTER": ex.transmitter,
					"LC_SERVER": "http://$(SEDNA_HOST_IP):9100", "SEDNA_WORKER_TOKEN": "secret:" + job + "-federatedlearningjob-worker-token/token",
				} {
					require.Equal(t, want, env[key], "%s env %s", name, key)
				}
				for _, key := range []string{"MODEL_NAME", "DATASET_NAME", "MODEL_URL", "TRAIN_DATASET_URL"} {
					require.NotEmpty(t, env[key], "%s env %s", name, key)
				}
				require.Equal(t, fmt.Sprintf("edge%d-node", i+1), pod.Spec.NodeName)
				require.True(t, pod.Spec.HostNetwork)
				require.Equal(t, corev1.DNSClusterFirstWithHostNet, pod.Spec.DNSPolicy)
				if ex.transmitter == "s3" {
					require.Equal(t, "s3://sedna/fl/aggregation_data", env["AGG_DATA_PATH"])
					require.Equal(t, "secret:mysecret/ACCESS_KEY_ID", env["ACCESS_KEY_ID"])
					require.NotEmpty(t, env["PRETRAINED_MODEL_URL"])
				}
			}
			job, err := controlPlane.Sedna.SednaV1alpha1().FederatedLearningJobs(ns).Get(ctx, job, metav1.GetOptions{})
			require.NoError(t, err)
			require.NotNil(t, job.Status.StartTime)
		})
	}

	// A training worker reports its round to its LC, as upstream's library does (the job's
	// worker token: the pods have no IPs without a kubelet).
	ns := namespaces["example-fl-surface-defect.yaml"]
	job := "surface-defect-detection"
	var token string
	require.Eventually(t, func() bool {
		secret, err := controlPlane.Kube.CoreV1().Secrets(ns).Get(ctx, job+"-federatedlearningjob"+workerauth.TokenSecretSuffix, metav1.GetOptions{})
		if err != nil {
			return false
		}
		token = string(secret.Data[workerauth.TokenKey])
		return token != ""
	}, 30*time.Second, 100*time.Millisecond)
	report := func(round int, accuracy float64) int {
		code, _ := sendWorkerReport(lcPort, job+"-train-0", token, map[string]any{
			"name": job + "-train-0", "namespace": ns, "ownerName": job, "ownerKind": "federatedlearningjob",
			"kind": "train", "status": "running",
			"results":   []any{map[string]any{"format": "pb", "url": "/model", "metrics": map[string]any{"accuracy": accuracy}}},
			"ownerInfo": map[string]any{"currentRound": round, "sampleCount": 100, "startTime": "2026-12-05 06:00:00", "updateTime": "2026-12-05 06:01:00"},
		}) // an unreachable LC gives 0, retried below
		return code
	}
	// The LC knows the job once GM sent it to edge1-node.
	require.Eventually(t, func() bool { return report(2, 0.875) == http.StatusOK }, 30*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool {
		got, err := controlPlane.Sedna.SednaV1alpha1().FederatedLearningJobs(ns).Get(ctx, job, metav1.GetOptions{})
		return err == nil && got.Status.Round == 2 && got.Status.Metrics == "accuracy=0.875"
	}, 30*time.Second, 100*time.Millisecond, "the round report did not reach the status")
	model, err := controlPlane.Sedna.SednaV1alpha1().Models(ns).Get(ctx, "surface-defect-detection-model", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, []sednav1.Metric{{Key: "accuracy", Value: "0.875"}}, model.Status.Metrics)

	// A GM restart creates no second worker: the same three pods, same UIDs.
	uids := func() []string {
		var out []string
		for name, pod := range flWorkerPods(t, ns, job) {
			out = append(out, name+"="+string(pod.UID))
		}
		sort.Strings(out)
		return out
	}
	before := uids()
	gm.stop()
	gm.start()
	// A worker deleted after the restart is created again, which shows the new GM synced the job.
	// (At once: no kubelet confirms a graceful deletion here.)
	require.NoError(t, controlPlane.Kube.CoreV1().Pods(ns).Delete(ctx, job+"-train-1", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}))
	require.Eventually(t, func() bool {
		pod, err := controlPlane.Kube.CoreV1().Pods(ns).Get(ctx, job+"-train-1", metav1.GetOptions{})
		return err == nil && pod.DeletionTimestamp == nil
	}, 60*time.Second, 100*time.Millisecond, "the deleted training worker was not created again")
	after := uids()
	require.Len(t, after, 3)
	require.Equal(t, before[0], after[0], "the aggregation worker was kept")
	require.Equal(t, before[1], after[1], "training worker 0 was kept")
	require.NotEqual(t, before[2], after[2], "training worker 1 is a new pod")
}
