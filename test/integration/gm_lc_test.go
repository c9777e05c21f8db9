package integration

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sedna-go/sedna/cmd/sedna-gm/app"
	lcapp "github.com/sedna-go/sedna/cmd/sedna-lc/app"
	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/config"
	"github.com/sedna-go/sedna/pkg/workerauth"
	"github.com/sedna-go/sedna/test/integration/framework"
)

// runInBackground runs fn until the test ends and waits for it to return.
func runInBackground(t *testing.T, name string, fn func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("%s stopped: %v", name, err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// scrape returns the value of one sample of a GM metric.
func scrape(t *testing.T, url, sample string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), sample+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			require.NoError(t, err)
			return v
		}
	}
	return 0
}

// postWorkerReport posts an edge worker's report the way upstream's Python library does.
// edgeWorker is the pod name the test's edge worker reports as: GM keeps only the counters of
// workers that are pods of the service.
const edgeWorker = "helmet-deployment-edge-0"

// postWorkerReport posts an edge worker's inference counters to an LC the way a worker does,
// with the job's worker token when token is not empty, and returns the outcome: the HTTP status,
// or the status in the body of a 200 (how the LC answers a report it dropped, as upstream's did).
func postWorkerReport(lcPort int, ns, service, token string, inferences int) (int, error) {
	return sendWorkerReport(lcPort, edgeWorker, token, map[string]any{
		"name": edgeWorker, "namespace": ns, "ownerName": service, "ownerKind": "jointinferenceservice",
		"kind": "inference", "results": []any{},
		"ownerInfo": map[string]any{"inferenceNumber": inferences, "hardExampleNumber": inferences / 2,
			"uploadCloudRatio": 0.5, "startTime": "2026-11-28 10:00:00", "updateTime": "2026-11-28 10:00:01"},
	})
}

func appendLines(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	for i := range n {
		_, err := fmt.Fprintf(f, "images/%d.jpg %d\n", time.Now().UnixNano()+int64(i), i%10)
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
}

// gmServiceAccount installs build/gm/rbac.yaml (namespace sedna) and returns a kubeconfig of GM's
// service account.
func gmServiceAccount(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	_, err := controlPlane.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "sedna"}}, metav1.CreateOptions{})
	if err != nil && !isAlreadyExists(err) {
		require.NoError(t, err)
	}
	out, err := controlPlane.Kubectl(ctx, "apply", "-f", filepath.Join(controlPlane.RepoRoot, "build", "gm", "rbac.yaml"))
	require.NoError(t, err, out)
	kubeconfig, err := controlPlane.ServiceAccountKubeconfig(ctx, "sedna", "sedna-gm")
	require.NoError(t, err)
	return kubeconfig
}

// TestGMAndTwoLCs wires a real sedna-gm (with the RBAC of build/gm) and two sedna-lcs over TLS websockets, authenticated with
// tokens bound to LC pods, against the real kube-apiserver. A Dataset's samples are counted by its
// node's LC and reach status; then one LC is cut off from GM while its dataset grows three times and
// its worker posts 20 reports; on reconnect every report reaches GM exactly once and the status is
// right.
func TestGMAndTwoLCs(t *testing.T) {
	ns := newNamespace(t)
	dir := t.TempDir()
	ctx := context.Background()
	cert, err := framework.WriteServingCert(dir, "127.0.0.1")
	require.NoError(t, err)

	gmPort, err := framework.FreePort()
	require.NoError(t, err)
	metricsPort, err := framework.FreePort()
	require.NoError(t, err)
	// GM runs with exactly the permissions build/gm/rbac.yaml grants.
	gmKubeconfig := gmServiceAccount(t)
	disabled := false
	cfg := &config.Config{
		KubeConfig: gmKubeconfig,
		WebSocket: config.WebSocket{Address: "127.0.0.1", Port: gmPort, TLSCertFile: cert.CertFile, TLSKeyFile: cert.KeyFile,
			LCServiceAccounts: []string{ns + "/sedna-lc"}},
		LeaderElection: config.LeaderElection{Enabled: &disabled},
		MetricsAddress: fmt.Sprintf("127.0.0.1:%d", metricsPort), HealthAddress: "127.0.0.1:0",
	}
	cfg.SetDefaults()
	require.NoError(t, cfg.Validate())
	runInBackground(t, "sedna-gm", func(ctx context.Context) error { return app.Run(ctx, cfg, "gm") })
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)

	proxy, err := framework.NewCutProxy(fmt.Sprintf("127.0.0.1:%d", gmPort))
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })

	type lc struct {
		node, rootfs string
		port         int
	}
	lcs := map[string]*lc{}
	for _, node := range []string{"edge-a", "edge-b"} {
		l := &lc{node: node, rootfs: filepath.Join(dir, node)}
		require.NoError(t, os.MkdirAll(filepath.Join(l.rootfs, "data"), 0o755))
		l.port, err = framework.FreePort()
		require.NoError(t, err)
		tokenFile := filepath.Join(dir, node+".token")
		require.NoError(t, os.WriteFile(tokenFile, []byte(lcToken(t, ns, "sedna-lc", node, "sedna-gm", true)), 0o600))
		gmAddress := fmt.Sprintf("127.0.0.1:%d", gmPort)
		if node == "edge-a" {
			gmAddress = proxy.Addr()
		}
		opts := lcapp.Options{
			GMAddress: gmAddress, NodeName: node, BindPort: l.port, BindAddress: "127.0.0.1", Rootfs: l.rootfs,
			TokenFile: tokenFile, CAFile: cert.CAFile, ServerName: "127.0.0.1",
			AllowedRoots: []string{"/data"}, DatasetPeriod: 100 * time.Millisecond,
		}
		runInBackground(t, "sedna-lc "+node, func(ctx context.Context) error { return lcapp.Run(ctx, opts) })
		lcs[node] = l
	}

	indexA := filepath.Join(lcs["edge-a"].rootfs, "data", "train.txt")
	appendLines(t, indexA, 10)
	indexB := filepath.Join(lcs["edge-b"].rootfs, "data", "train.csv")
	require.NoError(t, os.WriteFile(indexB, []byte("image,label\n"), 0o644))
	appendLines(t, indexB, 5)
	for _, ds := range []*sednav1.Dataset{
		{ObjectMeta: metav1.ObjectMeta{Name: "train-a", Namespace: ns}, Spec: sednav1.DatasetSpec{URL: "/data/train.txt", Format: "txt", NodeName: "edge-a"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "train-b", Namespace: ns}, Spec: sednav1.DatasetSpec{URL: "/data/train.csv", Format: "CSV", NodeName: "edge-b"}},
	} {
		_, err := controlPlane.Sedna.SednaV1alpha1().Datasets(ns).Create(ctx, ds, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	ji := loadFixture(t, "jointinferenceservice.yaml")
	ji.SetName("helmet")
	set(ji.Object, "edge-a", "spec", "edgeWorker", "template", "spec", "nodeName")
	createdJI, err := controlPlane.Dynamic.Resource(caseFor(t, "JointInferenceService").gvr()).Namespace(ns).Create(ctx, ji, metav1.CreateOptions{})
	require.NoError(t, err)

	samples := func(name string) int {
		ds, err := controlPlane.Sedna.SednaV1alpha1().Datasets(ns).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		return ds.Status.NumberOfSamples
	}
	require.Eventually(t, func() bool { return samples("train-a") == 10 && samples("train-b") == 5 }, 60*time.Second, 100*time.Millisecond,
		"datasets were not counted: train-a=%d train-b=%d", samples("train-a"), samples("train-b"))

	// The edge worker's pod with the labels of the service's edge workers (its Models do not
	// exist here, so GM makes no Deployment, and no controller manager runs anyway), and the
	// job's worker token GM made for its workers.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: edgeWorker, Namespace: ns, Labels: map[string]string{
			"jointinferenceservice.sedna.io/name": "helmet", "jointinferenceservice.sedna.io/uid": string(createdJI.GetUID()),
			"jointinferenceservice.sedna.io/worker-type": "edge"}},
		Spec: corev1.PodSpec{NodeName: "edge-a", Containers: []corev1.Container{{Name: "edge", Image: "edge-worker"}}},
	}
	_, err = controlPlane.Kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	require.NoError(t, err)
	var token string
	require.Eventually(t, func() bool {
		secret, err := controlPlane.Kube.CoreV1().Secrets(ns).Get(ctx, "helmet-jointinferenceservice"+workerauth.TokenSecretSuffix, metav1.GetOptions{})
		if err != nil {
			return false
		}
		token = string(secret.Data[workerauth.TokenKey])
		return token != ""
	}, 30*time.Second, 100*time.Millisecond)

	// The LC knows the service and its token once GM sent them: the first report succeeds then.
	require.Eventually(t, func() bool {
		code, err := postWorkerReport(lcs["edge-a"].port, ns, "helmet", token, 0)
		return err == nil && code == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond)
	// Anything else on the node network is refused: no token from an address that is no worker's
	// (the pod has no IP), or another token.
	for _, forged := range []string{"", "not-the-token"} {
		code, err := postWorkerReport(lcs["edge-a"].port, ns, "helmet", forged, 1000)
		require.NoError(t, err)
		require.Equal(t, http.StatusForbidden, code, "token %q", forged)
	}
	inferences := func() string {
		got, err := controlPlane.Sedna.SednaV1alpha1().JointInferenceServices(ns).Get(ctx, "helmet", metav1.GetOptions{})
		require.NoError(t, err)
		for _, m := range got.Status.Metrics {
			if m.Key == "inferenceNumber" {
				return m.Value
			}
		}
		return ""
	}
	require.Eventually(t, func() bool { return inferences() == "0" }, 30*time.Second, 100*time.Millisecond)
	const accepted = `sedna_gm_channel_reports_total{result="accepted"}`
	before := scrape(t, metricsURL, accepted)

	proxy.Cut()
	require.Eventually(t, func() bool { return scrape(t, metricsURL, "sedna_gm_channel_connected_nodes") == 1 }, 60*time.Second, 100*time.Millisecond)
	for range 3 {
		appendLines(t, indexA, 4)
		time.Sleep(500 * time.Millisecond) // several periods: the LC counts each growth on its own
	}
	for i := 1; i <= 20; i++ {
		code, err := postWorkerReport(lcs["edge-a"].port, ns, "helmet", token, i)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code, "the LC must accept reports while GM is unreachable")
	}
	require.Equal(t, 10, samples("train-a"), "GM cannot know the growth while the node is cut off")
	require.Equal(t, before, scrape(t, metricsURL, accepted))

	proxy.Restore()
	require.Eventually(t, func() bool { return samples("train-a") == 22 && inferences() == "20" }, 60*time.Second, 100*time.Millisecond,
		"after reconnect: samples=%d inferences=%s", samples("train-a"), inferences())
	// 3 dataset reports (one per growth), each accepted exactly once, and the 20 worker reports
	// coalesced into the newest: each carries the worker's cumulative counters, so the LC's
	// outbox keeps only the latest of the stream while GM is unreachable.
	require.Eventually(t, func() bool { return scrape(t, metricsURL, accepted)-before == 4 }, 30*time.Second, 100*time.Millisecond,
		"accepted reports after reconnect: %v", scrape(t, metricsURL, accepted)-before)
	time.Sleep(time.Second)
	require.Equal(t, 4.0, scrape(t, metricsURL, accepted)-before, "a report was processed twice")
	require.Equal(t, 5, samples("train-b"))
}
