//go:build scale

package scale

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/sedna-go/sedna/cmd/sedna-gm/app"
	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	sednaclientset "github.com/sedna-go/sedna/pkg/client/clientset/versioned"
	"github.com/sedna-go/sedna/pkg/globalmanager/config"
	"github.com/sedna-go/sedna/test/integration/framework"
	"github.com/sedna-go/sedna/test/localcluster"
)

// childrenPerService are the children the figure counts: two worker Deployments and the cloud
// worker's Service.
const childrenPerService = 3

// sizes are the numbers of services, from SCALE_N ("100,1000"), default 100 and 1,000.
func sizes(t *testing.T) []int {
	raw := os.Getenv("SCALE_N")
	if raw == "" {
		raw = "100,1000"
	}
	var out []int
	for _, s := range strings.Split(raw, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		require.NoError(t, err, "SCALE_N must be a comma-separated list of positive integers, got %q", raw)
		require.Positive(t, n, "SCALE_N must be a comma-separated list of positive integers, got %q", raw)
		out = append(out, n)
	}
	return out
}

// envInt reads an optional integer override (0 when unset).
func envInt(t *testing.T, name string) int {
	raw := os.Getenv(name)
	if raw == "" {
		return 0
	}
	v, err := strconv.Atoi(raw)
	require.NoError(t, err, "%s must be an integer, got %q", name, raw)
	return v
}

// result is one row of the convergence table.
type result struct {
	n                    int
	gm, bare             time.Duration
	gmWrites, bareWrites map[string]float64
	events               float64
}

// TestConvergence prints, for each N, the time GM takes to create the children of N joint
// inference services next to the time a bare client-go writer takes for the same children.
func TestConvergence(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	dir := t.TempDir()
	cluster, err := localcluster.Start(ctx, localcluster.Options{
		Dir: filepath.Join(dir, "cluster"),
		// Room for the Services of both writers at N = 10,000 (the default is a loopback /24).
		ServiceCIDR: "10.200.0.0/16",
		// The figure is about GM's writes against the API server's capacity: without the
		// Deployment controller no ReplicaSets and pods of thousands of Deployments load the same
		// two cores while one writer or the other is measured.
		ControllerManagerArgs: []string{"--controllers=*,-deployment-controller"},
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := cluster.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	admin := rest.CopyConfig(cluster.Config)
	admin.QPS, admin.Burst = -1, 0
	admin.RateLimiter = flowcontrol.NewFakeAlwaysRateLimiter()
	kube := kubernetes.NewForConfigOrDie(admin)
	sedna := sednaclientset.NewForConfigOrDie(admin)
	installCRDs(t, admin)
	// Pods are bound to these by nodeName; existing nodes keep the pod garbage collector from
	// deleting them as orphans (and their ReplicaSets from recreating them) during the run.
	for _, node := range []string{cloudNode, edgeNode} {
		require.NoError(t, cluster.AddNode(ctx, node, nil))
	}

	var results []result
	for _, n := range sizes(t) {
		r := result{n: n}
		gmNS, bareNS := fmt.Sprintf("gm-%d", n), fmt.Sprintf("bare-%d", n)
		for _, ns := range []string{gmNS, bareNS} {
			_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
			require.NoError(t, err)
		}

		// GM: create the Models, start GM, then create the services and wait for every child.
		for _, m := range models(gmNS) {
			_, err := sedna.SednaV1alpha1().Models(gmNS).Create(ctx, m, metav1.CreateOptions{})
			require.NoError(t, err)
		}
		gm := startGM(ctx, t, dir, cluster.Kubeconfig, fmt.Sprintf("%d", n))
		before := apiserverWrites(ctx, t, kube)
		watch := watchChildren(ctx, t, kube, gmNS)
		start := time.Now()
		parallel(ctx, t, n, func(ctx context.Context, i int) error {
			_, err := sedna.SednaV1alpha1().JointInferenceServices(gmNS).Create(ctx, service(gmNS, i), metav1.CreateOptions{})
			return err
		})
		watch.wait(ctx, t, n*childrenPerService)
		r.gm = time.Since(start)
		r.gmWrites = diff(apiserverWrites(ctx, t, kube), before)
		// Events are written asynchronously and dropped when their queue fills: count what arrived
		// once the writes settle.
		time.Sleep(2 * time.Second)
		events, err := kube.CoreV1().Events(gmNS).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		for _, e := range events.Items {
			if e.Source.Component == "sedna-gm" || e.ReportingController == "sedna-gm" {
				r.events++
			}
		}
		gm.stop(t)
		watch.stop()

		// The reference: the same children, written by a bare client with 16 workers.
		children := copyChildren(ctx, t, kube, gmNS, bareNS)
		before = apiserverWrites(ctx, t, kube)
		watch = watchChildren(ctx, t, kube, bareNS)
		start = time.Now()
		parallel(ctx, t, len(children), func(ctx context.Context, i int) error { return children[i](ctx) })
		watch.wait(ctx, t, n*childrenPerService)
		r.bare = time.Since(start)
		r.bareWrites = diff(apiserverWrites(ctx, t, kube), before)
		watch.stop()
		results = append(results, r)
		t.Logf("N=%d: GM %s, bare %s", n, r.gm.Round(10*time.Millisecond), r.bare.Round(10*time.Millisecond))
	}
	printTable(t, results)
}

func printTable(t *testing.T, results []result) {
	var b strings.Builder
	b.WriteString("\n| services | children | bare writer (16 workers) | GM | ratio bare/GM | GM's Events stored |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %d | %d | %.2f s | %.2f s | %.2f | %.0f |\n", r.n, r.n*childrenPerService,
			r.bare.Seconds(), r.gm.Seconds(), r.bare.Seconds()/r.gm.Seconds(), r.events)
	}
	b.WriteString("\nAPI server writes (create, update, patch) by resource during GM's phase, the controller manager's included:\n")
	for _, r := range results {
		fmt.Fprintf(&b, "N=%d: %s\n", r.n, formatWrites(r.gmWrites))
	}
	b.WriteString("\nAPI server writes during the bare writer's phase:\n")
	for _, r := range results {
		fmt.Fprintf(&b, "N=%d: %s\n", r.n, formatWrites(r.bareWrites))
	}
	fmt.Println(b.String())
}

const (
	cloudNode = "scale-cloud"
	edgeNode  = "scale-edge"
)

func models(ns string) []*sednav1.Model {
	return []*sednav1.Model{
		{ObjectMeta: metav1.ObjectMeta{Name: "big", Namespace: ns}, Spec: sednav1.ModelSpec{URL: "/data/big-model/model.pb", Format: "pb"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "little", Namespace: ns}, Spec: sednav1.ModelSpec{URL: "/data/little-model/model.pb", Format: "pb"}},
	}
}

// service is a joint inference service like upstream's helmet-detection example.
func service(ns string, i int) *sednav1.JointInferenceService {
	worker := func(node, image string) corev1.PodTemplateSpec {
		return corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "worker", Image: image, Env: []corev1.EnvVar{{Name: "input_shape", Value: "416,736"}},
		}}}}
	}
	return &sednav1.JointInferenceService{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ji-%05d", i), Namespace: ns},
		Spec: sednav1.JointInferenceServiceSpec{
			EdgeWorker: sednav1.EdgeWorker{
				Model:             sednav1.ModelReference{Name: "little"},
				HardExampleMining: sednav1.HardExampleMining{Name: "IBT"},
				Template:          worker(edgeNode, "example/little:v1"),
			},
			CloudWorker: sednav1.CloudWorker{
				Model:    sednav1.ModelReference{Name: "big"},
				Template: worker(cloudNode, "example/big:v1"),
			},
		},
	}
}

// gmRun is a sedna-gm running in this process.
type gmRun struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// startGM starts GM with its shipped defaults (SCALE_GM_QPS, SCALE_GM_BURST and SCALE_GM_WORKERS
// override them for experiments) and waits until it serves.
func startGM(ctx context.Context, t *testing.T, dir, kubeconfig, name string) *gmRun {
	gmDir := filepath.Join(dir, "gm-"+name)
	require.NoError(t, os.MkdirAll(gmDir, 0o700))
	cert, err := framework.WriteServingCert(gmDir, "127.0.0.1")
	require.NoError(t, err)
	tokens := filepath.Join(gmDir, "tokens")
	require.NoError(t, os.WriteFile(tokens, []byte("unused-token,"+edgeNode+"\n"), 0o600))
	ports := make([]int, 3)
	for i := range ports {
		ports[i], err = framework.FreePort()
		require.NoError(t, err)
	}
	disabled := false
	cfg := &config.Config{
		KubeConfig: kubeconfig,
		WebSocket: config.WebSocket{Address: "127.0.0.1", Port: ports[0], TLSCertFile: cert.CertFile, TLSKeyFile: cert.KeyFile,
			StaticTokensFile: tokens},
		LeaderElection: config.LeaderElection{Enabled: &disabled},
		MetricsAddress: fmt.Sprintf("127.0.0.1:%d", ports[1]), HealthAddress: fmt.Sprintf("127.0.0.1:%d", ports[2]),
	}
	if qps := envInt(t, "SCALE_GM_QPS"); qps != 0 {
		cfg.KubeAPI.QPS = float32(qps)
	}
	if burst := envInt(t, "SCALE_GM_BURST"); burst != 0 {
		cfg.KubeAPI.Burst = burst
	}
	if workers := envInt(t, "SCALE_GM_WORKERS"); workers != 0 {
		cfg.Features = map[string]config.Feature{"JointInference": {Workers: workers}}
	}
	cfg.SetDefaults()
	require.NoError(t, cfg.Validate())
	// GM logs at its default verbosity to a file, not into the table.
	gmCtx, cancel := context.WithCancel(klog.NewContext(context.Background(), klog.Background()))
	gm := &gmRun{cancel: cancel, done: make(chan error, 1)}
	go func() { gm.done <- app.Run(gmCtx, cfg, "scale-"+name) }()
	t.Cleanup(func() { gm.stop(t) })
	require.NoError(t, wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		select {
		case err := <-gm.done:
			return false, fmt.Errorf("sedna-gm stopped: %w", err)
		default:
		}
		return healthy(cfg.HealthAddress), nil
	}))
	return gm
}

func (gm *gmRun) stop(t *testing.T) {
	gm.once.Do(func() {
		gm.cancel()
		select {
		case <-gm.done: //nolint:errcheck // stopped on purpose
		case <-time.After(30 * time.Second):
			t.Error("sedna-gm did not stop within 30s")
		}
	})
}

// childWatch counts the Deployments and Services that exist in a namespace, from a watch.
type childWatch struct {
	count  atomic.Int64
	cancel context.CancelFunc
}

func watchChildren(ctx context.Context, t *testing.T, kube kubernetes.Interface, ns string) *childWatch {
	w := &childWatch{}
	ctx, w.cancel = context.WithCancel(ctx)
	factory := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(ns))
	counter := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.count.Add(1) },
		DeleteFunc: func(any) { w.count.Add(-1) },
	}
	for _, informer := range []cache.SharedIndexInformer{factory.Apps().V1().Deployments().Informer(), factory.Core().V1().Services().Informer()} {
		_, err := informer.AddEventHandler(counter)
		require.NoError(t, err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return w
}

func (w *childWatch) wait(ctx context.Context, t *testing.T, want int) {
	err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Minute, true, func(context.Context) (bool, error) {
		return w.count.Load() >= int64(want), nil
	})
	require.NoError(t, err, "children: have %d, want %d", w.count.Load(), want)
}

func (w *childWatch) stop() { w.cancel() }

// copyChildren returns functions creating, in namespace to, copies of the Deployments and Services
// GM created in from: the same objects, without what the API server set and without the owner
// reference (whose owner is not in to).
func copyChildren(ctx context.Context, t *testing.T, kube kubernetes.Interface, from, to string) []func(context.Context) error {
	deployments, err := kube.AppsV1().Deployments(from).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	services, err := kube.CoreV1().Services(from).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	clean := func(m *metav1.ObjectMeta) {
		*m = metav1.ObjectMeta{Name: m.Name, Namespace: to, Labels: m.Labels, Annotations: m.Annotations}
	}
	var out []func(context.Context) error
	for i := range deployments.Items {
		d := deployments.Items[i].DeepCopy()
		clean(&d.ObjectMeta)
		d.Status = appsv1.DeploymentStatus{}
		out = append(out, func(ctx context.Context) error {
			_, err := kube.AppsV1().Deployments(to).Create(ctx, d, metav1.CreateOptions{})
			return err
		})
	}
	for i := range services.Items {
		s := services.Items[i].DeepCopy()
		clean(&s.ObjectMeta)
		s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil
		s.Status = corev1.ServiceStatus{}
		out = append(out, func(ctx context.Context) error {
			_, err := kube.CoreV1().Services(to).Create(ctx, s, metav1.CreateOptions{})
			return err
		})
	}
	return out
}

// apiserverWrites reads the API server's request counters: create, update and patch requests by
// resource (subresources such as status counted with their resource).
func apiserverWrites(ctx context.Context, t *testing.T, kube kubernetes.Interface) map[string]float64 {
	data, err := kube.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	require.NoError(t, err)
	out := map[string]float64{}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") {
			continue
		}
		labels, value, ok := strings.Cut(strings.TrimPrefix(line, "apiserver_request_total{"), "} ")
		if !ok {
			continue
		}
		verb, resource := label(labels, "verb"), label(labels, "resource")
		if verb != "POST" && verb != "PUT" && verb != "PATCH" && verb != "APPLY" {
			continue
		}
		if sub := label(labels, "subresource"); sub != "" {
			resource += "/" + sub
		}
		v, err := strconv.ParseFloat(value, 64)
		require.NoError(t, err)
		out[resource] += v
	}
	return out
}

func label(labels, name string) string {
	_, rest, ok := strings.Cut(labels, name+`="`)
	if !ok {
		return ""
	}
	value, _, _ := strings.Cut(rest, `"`)
	return value
}

func diff(after, before map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

func formatWrites(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// healthy reports whether GM's readiness endpoint answers 200.
func healthy(address string) bool {
	client := &http.Client{Timeout: time.Second}
	resp, err := client.Get("http://" + address + "/readyz")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
