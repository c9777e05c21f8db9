package scale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/sedna-go/sedna/internal/gomod"
	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	sednaclientset "github.com/sedna-go/sedna/pkg/client/clientset/versioned"
	"github.com/sedna-go/sedna/pkg/globalmanager/config"
	"github.com/sedna-go/sedna/pkg/localcontroller/gmclient"
	"github.com/sedna-go/sedna/pkg/localcontroller/store"
	"github.com/sedna-go/sedna/test/integration/framework"
	"github.com/sedna-go/sedna/test/localcluster"
)

// The fleet: N fake edge Nodes kept Ready by KWOK, an LC pod on each (KWOK reports it Running),
// and N simulated LCs in this process, each a real gmclient with its own store and TLS
// connection, authenticating with a TokenRequest token bound to its pod. Two sedna-gm processes
// (the shipped binary) run with leader election; the LCs reach the leader through a TCP front,
// as through a Service. GM's own API requests go through a counting proxy.

const (
	fleetNamespace = "sedna"
	lcAccount      = "sedna-lc"
	edgeRole       = "node-role.kubernetes.io/edge"
	kwokVersion    = "v0.8.0"
	// kwokAnnotation marks the nodes KWOK manages (its default selector).
	kwokAnnotation = "kwok.x-k8s.io/node"
)

// bareWorkers is the reference writer's concurrency, and the test's own for setting up.
const bareWorkers = 16

// FleetOptions sizes one fleet run.
type FleetOptions struct {
	Nodes int
	// ReportsPerLC is how many dataset reports each LC sends in the report phase (0: none).
	ReportsPerLC int
	// RestWindow is how long GM is watched while nothing changes.
	RestWindow time.Duration
	// Failover kills the leading GM with SIGKILL after the steady-state window.
	Failover bool
	// LeaseDuration of GM's leader election.
	LeaseDuration time.Duration
	// Objects is how many workload objects (JointInferenceServices and IncrementalLearningJobs,
	// half each, spread over the nodes) are created after the rest window (0: none).
	Objects int
	// ReportRate paces the report phase: reports per second over the whole fleet, each LC
	// sending its share at even intervals (0: every LC queues its reports at once, a burst).
	ReportRate float64
}

// FleetResult is one row of the fleet tables.
type FleetResult struct {
	Nodes int
	// Snapshot is the time from starting the LCs to every LC holding its complete snapshot.
	Snapshot time.Duration
	// GM's RSS and CPU (cores) while at rest with every LC connected.
	RSS      uint64
	CPUCores float64
	// RestRequests counts GM's API requests during the rest window by "verb resource".
	RestRequests map[string]int
	RestWindow   time.Duration
	// Reports: how many went through, their rate and end-to-end p99 (enqueue → status observed),
	// and GM's Dataset status writes while they went through (coalescing: fewer than reports).
	Reports      int
	ReportRate   float64
	ReportP99    time.Duration
	StatusWrites int
	// Workload: objects created, time until every child existed and every LC held its objects,
	// what converged, and the leader's RSS before and after (settled).
	Objects                 int
	WorkloadConverge        time.Duration
	WorkloadCounts          workloadCounts
	RSSBeforeWorkload       uint64
	RSSAfterWorkload        uint64
	WorkloadRequestsPerKind map[string]int
	// Machine: RSS of the other processes at the end of the workload (or rest) phase: the test
	// process (the N LCs), kube-apiserver, etcd, KWOK, and the standby GM.
	ProcessRSS map[string]uint64
	LoadAvg    string
	// Failover: SIGKILL of the leader → every LC applied a complete snapshot from the new one.
	Failover      time.Duration
	LeaseDuration time.Duration
	// FailoverPhases: from the SIGKILL to the standby acquiring the Lease (its acquireTime), to
	// the new leader answering ready (serving LCs), to every LC connected to it again.
	FailoverAcquired, FailoverServing, FailoverConnected time.Duration
	// FailoverDials counts the LCs' dials during the failover by result.
	FailoverDials map[string]int
	// GMRestarts counts GM processes that exited (a lost Lease) and were started again before
	// the failover.
	GMRestarts int
	// GMOpenFiles is the new leader's open files after the failover (every LC connected), and
	// GMOpenFilesLimit its soft limit.
	GMOpenFiles, GMOpenFilesLimit int
	// FailoverReviews describes GM's TokenReviews from the SIGKILL to the end of the failover.
	FailoverReviews string
	// FailoverProfile is the top of the new leader's CPU profile over the failover.
	FailoverProfile string
	// FailoverShardProfile is the top of the LC shards' CPU profiles (merged) from the SIGKILL
	// until every LC held the new leader's snapshot.
	FailoverShardProfile string
	// PIDs of every process the run started (control plane, KWOK, GMs); none may outlive it.
	PIDs map[string]int
}

// RunFleet runs one fleet of opts.Nodes nodes on the control plane in dir and returns its figures.
func RunFleet(ctx context.Context, t testing.TB, dir string, opts FleetOptions) FleetResult {
	res := FleetResult{Nodes: opts.Nodes, RestWindow: opts.RestWindow, LeaseDuration: opts.LeaseDuration}
	raiseOpenFiles(t, opts.Nodes)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "logs"), 0o700))
	// SCALE_KEEP_LOGS=<dir> keeps GM's and KWOK's logs of the run (the temp dir goes with it).
	if keep := os.Getenv("SCALE_KEEP_LOGS"); keep != "" {
		t.Cleanup(func() { // registered first, so it runs after every process has stopped
			target := filepath.Join(keep, fmt.Sprintf("fleet-%d-%d", opts.Nodes, time.Now().Unix()))
			if err := os.CopyFS(target, os.DirFS(filepath.Join(dir, "logs"))); err != nil {
				t.Logf("keeping the logs: %v", err)
			}
		})
	}
	cluster, err := localcluster.Start(ctx, localcluster.Options{Dir: filepath.Join(dir, "cluster"),
		// Room for the workload's Services (the default is a loopback /24).
		ServiceCIDR: "10.200.0.0/16"})
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

	kwok := startKWOK(ctx, t, dir, cluster.Kubeconfig)
	makeNodesAndPods(ctx, t, kube, opts.Nodes, kwok)

	// GM: two processes of the shipped binary behind a front; API requests counted.
	gmBin := buildGM(t, dir)
	counter := startCountingProxy(t, admin)
	certDir := filepath.Join(dir, "gm-cert")
	require.NoError(t, os.MkdirAll(certDir, 0o700))
	cert, err := framework.WriteServingCert(certDir, "127.0.0.1")
	require.NoError(t, err)
	gms := []*gmProcess{
		startGMProcess(ctx, t, dir, gmBin, "gm-a", counter.kubeconfig(t, dir), cert, opts.LeaseDuration),
		startGMProcess(ctx, t, dir, gmBin, "gm-b", counter.kubeconfig(t, dir), cert, opts.LeaseDuration),
	}
	front := startFront(t, gms)

	// One Dataset per node: each LC's snapshot is its dataset.
	parallel(ctx, t, opts.Nodes, func(ctx context.Context, i int) error {
		_, err := sedna.SednaV1alpha1().Datasets(fleetNamespace).Create(ctx, &sednav1.Dataset{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ds-%d", i)},
			Spec:       sednav1.DatasetSpec{URL: "/data/index.txt", Format: "txt", NodeName: nodeName(i)},
		}, metav1.CreateOptions{})
		return err
	})

	lcs := startLCs(ctx, t, dir, kube, cert.CAFile, front, opts.Nodes)
	start := time.Now()
	waitFor(ctx, t, 10*time.Minute, "every LC holds its dataset", func() bool { return lcs.holding() == opts.Nodes })
	res.Snapshot = time.Since(start)
	t.Logf("N=%d: every LC holds its snapshot after %s", opts.Nodes, res.Snapshot.Round(time.Millisecond))

	leader := leaderOf(ctx, t, kube, gms)
	// At rest: let the last status writes settle, then count.
	time.Sleep(5 * time.Second)
	cpu0, before := processCPU(t, leader.pid()), counter.snapshot()
	time.Sleep(opts.RestWindow)
	cpu1, after := processCPU(t, leader.pid()), counter.snapshot()
	res.CPUCores = (cpu1 - cpu0).Seconds() / opts.RestWindow.Seconds()
	res.RSS = processRSS(t, leader.pid())
	res.RestRequests = diffCounts(after, before)

	if opts.Objects > 0 {
		res.Objects = opts.Objects
		res.RSSBeforeWorkload = res.RSS
		before := counter.snapshot()
		res.WorkloadConverge, res.WorkloadCounts = createWorkload(ctx, t, kube, sedna, lcs, opts.Objects)
		t.Logf("N=%d: %d objects converged in %s: %s", opts.Nodes, opts.Objects, res.WorkloadConverge.Round(time.Millisecond), res.WorkloadCounts)
		// Let GM's Events and status writes settle before reading its memory.
		time.Sleep(10 * time.Second)
		res.RSSAfterWorkload = processRSS(t, leader.pid())
		res.WorkloadRequestsPerKind = diffCounts(counter.snapshot(), before)
	}
	res.ProcessRSS = map[string]uint64{"test process": processRSS(t, os.Getpid()), "LC shards": lcs.rss(t)}
	for name, pid := range cluster.PIDs() {
		if name == "kube-apiserver" || name == "etcd" {
			res.ProcessRSS[name] = processRSS(t, pid)
		}
	}
	res.ProcessRSS["kwok"] = processRSS(t, kwok.PID())
	for _, gm := range gms {
		if gm != leader {
			res.ProcessRSS["standby GM"] = processRSS(t, gm.pid())
		}
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		res.LoadAvg = strings.Join(strings.Fields(string(load))[:3], " ")
	}

	if opts.ReportsPerLC > 0 {
		before := counter.snapshot()
		res.Reports, res.ReportRate, res.ReportP99 = runReports(ctx, t, sedna, lcs, opts.ReportsPerLC, opts.ReportRate)
		d := diffCounts(counter.snapshot(), before)
		res.StatusWrites = d["update datasets/status"] + d["patch datasets/status"]
	}

	res.PIDs = cluster.PIDs()
	res.PIDs["kwok"] = kwok.PID()
	maps.Copy(res.PIDs, lcs.pids())
	for _, gm := range gms {
		res.GMRestarts += gm.restartCount()
		gm.mu.Lock()
		for i, pid := range gm.pids {
			res.PIDs[fmt.Sprintf("%s#%d", gm.name, i)] = pid
		}
		gm.mu.Unlock()
	}
	if opts.Failover {
		// The leader may have changed: a GM that could not renew its Lease in time exits and
		// is started again.
		leader = leaderOf(ctx, t, kube, gms)
		dials := lcs.dialCounts()
		var standby *gmProcess
		for _, gm := range gms {
			if gm != leader {
				standby = gm
			}
		}
		lcs.armFailover(t, filepath.Join(dir, "logs"))
		killed := time.Now()
		require.NoError(t, leader.kill())
		phases := watchFailover(ctx, kube, standby, killed)
		// The standby's CPU profile from the SIGKILL on: its wait for the Lease, the take-over and
		// the LCs' reconnect storm.
		profile := profileGM(ctx, t, standby, filepath.Join(dir, "logs", "failover-cpu.pprof"), opts.LeaseDuration+20*time.Second)
		// A complete snapshot from the new leader is at least the dataset and the sync frame; the
		// shards time each LC's (armFailover).
		connected, synced := lcs.failoverDone(t, opts.LeaseDuration+5*time.Minute)
		require.Equal(t, opts.Nodes, lcs.holding(), "LCs holding their dataset after the failover")
		res.Failover, res.FailoverConnected = synced.Sub(killed), connected.Sub(killed)
		res.FailoverAcquired, res.FailoverServing = phases.wait()
		res.FailoverDials = diffCounts(lcs.dialCounts(), dials)
		res.FailoverReviews = counter.reviewsSince(killed)
		res.GMOpenFiles, res.GMOpenFilesLimit = openFiles(t, standby.pid())
		res.FailoverProfile = profile.top(t, gmBin)
		res.FailoverShardProfile = lcs.failoverProfileTop(t)
		t.Logf("N=%d: failover took %s (lease %s): Lease acquired after %s, serving after %s, every LC connected after %s; dials %v",
			opts.Nodes, res.Failover.Round(time.Millisecond), opts.LeaseDuration, res.FailoverAcquired.Round(time.Millisecond),
			res.FailoverServing.Round(time.Millisecond), res.FailoverConnected.Round(time.Millisecond), res.FailoverDials)
	}
	return res
}

func nodeName(i int) string { return fmt.Sprintf("edge-%d", i) }

// raiseOpenFiles makes room in this process for the front's two sockets per LC (the LCs
// themselves, with their socket and store each, run in shard processes) and GM's connections to
// the counting proxy. Raising the hard limit needs CAP_SYS_RESOURCE; without it the fleet is
// bounded by the hard limit (20,000 in this container: 5,000 nodes fit).
func raiseOpenFiles(t testing.TB, n int) {
	need := uint64(n)*2 + 2048
	var limit syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit))
	if limit.Cur >= need {
		return
	}
	limit.Cur, limit.Max = need, max(limit.Max, need)
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &limit),
		"a fleet of %d LCs in this process needs %d open files; raise the limit (ulimit -n)", n, need)
}

// Alive names the processes of pids that still run (not reaped or still running).
func Alive(pids map[string]int) []string {
	var out []string
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil || !errors.Is(err, syscall.ESRCH) {
			out = append(out, fmt.Sprintf("%s (pid %d)", name, pid))
		}
	}
	slices.Sort(out)
	return out
}

// diffCounts is after − before, positive differences only.
func diffCounts(after, before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

func waitFor(ctx context.Context, t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(context.Context) (bool, error) { return cond(), nil })
	require.NoError(t, err, "waiting until %s", what)
}

// kwokBinary returns KWOK built from the module proxy (hack/tools/kwok), cached like the control
// plane's binaries.
func kwokBinary(t testing.TB) string {
	cache := os.Getenv("SEDNA_TEST_BIN_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		require.NoError(t, err)
		cache = filepath.Join(home, ".cache", "sedna-test-binaries")
	}
	dir := filepath.Join(cache, "kwok-"+kwokVersion+"-"+runtime.GOOS+"-"+runtime.GOARCH)
	bin := filepath.Join(dir, "kwok")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	cmd := exec.Command("go", "build", "-ldflags", "-s -w", "-o", bin+".tmp", "sigs.k8s.io/kwok/cmd/kwok")
	cmd.Dir = filepath.Join(localcluster.RepoRoot(), "hack", "tools", "kwok")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "building kwok: %s", out)
	require.NoError(t, os.Rename(bin+".tmp", bin))
	return bin
}

func startKWOK(ctx context.Context, t testing.TB, dir, kubeconfig string) *localcluster.Process {
	bin := kwokBinary(t)
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=" + kwokAnnotation + "=fake",
		"--node-lease-duration-seconds=40",
	}
	// KWOK's own stages, from its module: nodes become Ready and renew their Lease; pods run.
	// The binary may come from the cache while the module was never downloaded (a fresh module
	// cache): gomod.Dir fetches it.
	module, err := gomod.Dir(filepath.Join(localcluster.RepoRoot(), "hack", "tools", "kwok"), "sigs.k8s.io/kwok")
	require.NoError(t, err, "locating the kwok module")
	stages := filepath.Join(module, "kustomize", "stage")
	for _, f := range []string{"node/fast/node-initialize.yaml", "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
		"pod/fast/pod-ready.yaml", "pod/fast/pod-delete.yaml"} {
		args = append(args, "--config="+filepath.Join(stages, f))
	}
	proc, err := localcluster.StartProcess(ctx, "kwok", bin, filepath.Join(dir, "logs"), args)
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := proc.Stop(); err != nil {
			t.Errorf("stopping kwok: %v", err)
		}
	})
	return proc
}

// makeNodesAndPods registers n edge Nodes for KWOK and an LC pod bound to each, and waits until
// KWOK reports every node Ready and every pod Running; KWOK exiting fails the test at once.
func makeNodesAndPods(ctx context.Context, t testing.TB, kube kubernetes.Interface, n int, kwok *localcluster.Process) {
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fleetNamespace}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kube.CoreV1().ServiceAccounts(fleetNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: lcAccount}}, metav1.CreateOptions{})
	require.NoError(t, err)
	parallel(ctx, t, n, func(ctx context.Context, i int) error {
		_, err := kube.CoreV1().Nodes().Create(ctx, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: nodeName(i),
				Labels:      map[string]string{edgeRole: "", corev1.LabelHostname: nodeName(i), "type": "kwok"},
				Annotations: map[string]string{kwokAnnotation: "fake"}},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		_, err = kube.CoreV1().Pods(fleetNamespace).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("lc-%d", i), Labels: map[string]string{"app": "sedna-lc"}},
			Spec: corev1.PodSpec{
				NodeName: nodeName(i), ServiceAccountName: lcAccount,
				Containers:  []corev1.Container{{Name: "lc", Image: "sedna-lc"}},
				Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			},
		}, metav1.CreateOptions{})
		return err
	})
	waitFor(ctx, t, 10*time.Minute, "KWOK reports every node Ready and every LC pod Running", func() bool {
		if exited, err := kwok.Exited(); exited {
			require.FailNow(t, "kwok exited", "%v; its log ends:\n%s", err, kwok.LogTail())
		}
		nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: edgeRole})
		if err != nil {
			return false
		}
		ready := 0
		for i := range nodes.Items {
			if localcluster.NodeReady(&nodes.Items[i]) {
				ready++
			}
		}
		pods, err := kube.CoreV1().Pods(fleetNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=sedna-lc"})
		if err != nil {
			return false
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return ready == n && running == n
	})
}

// buildGM builds the shipped sedna-gm.
func buildGM(t testing.TB, dir string) string { return buildCommand(t, dir, "./cmd/sedna-gm") }

// buildCommand builds the command in pkg (a path below the repository) into dir/bin.
func buildCommand(t testing.TB, dir, pkg string) string {
	bin := filepath.Join(dir, "bin", filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = localcluster.RepoRoot()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "building %s: %s", pkg, out)
	return bin
}

type gmProcess struct {
	name        string
	channelPort int
	healthAddr  string
	// profilingAddr serves GM's Go profiles (config profilingAddress).
	profilingAddr string

	mu       sync.Mutex
	proc     *localcluster.Process
	restarts int
	stopped  bool
	// pids of every process started for this GM.
	pids []int
}

func startGMProcess(ctx context.Context, t testing.TB, dir, bin, name, kubeconfig string, cert framework.ServingCert, lease time.Duration) *gmProcess {
	ports := make([]int, 4)
	for i := range ports {
		var err error
		ports[i], err = framework.FreePort()
		require.NoError(t, err)
	}
	enabled := true
	cfg := config.Config{
		KubeConfig: kubeconfig,
		WebSocket: config.WebSocket{Address: "127.0.0.1", Port: ports[0], TLSCertFile: cert.CertFile, TLSKeyFile: cert.KeyFile,
			LCServiceAccounts: []string{fleetNamespace + "/" + lcAccount}},
		LeaderElection: config.LeaderElection{Enabled: &enabled, LeaseNamespace: fleetNamespace,
			LeaseDuration: config.Duration{Duration: lease}, RenewDeadline: config.Duration{Duration: lease * 2 / 3},
			RetryPeriod: config.Duration{Duration: envRetryPeriod()}}, // 0: the shipped default
		MetricsAddress: fmt.Sprintf("127.0.0.1:%d", ports[1]), HealthAddress: fmt.Sprintf("127.0.0.1:%d", ports[2]),
		ProfilingAddress: fmt.Sprintf("127.0.0.1:%d", ports[3]),
	}
	// SCALE_TOKEN_REVIEW_ONLY=1 turns GM's local token verification off: every LC token goes to
	// TokenReview, as before local verification (the failover's before/after, same binary).
	if os.Getenv("SCALE_TOKEN_REVIEW_ONLY") != "" {
		off := false
		cfg.WebSocket.TokenReview.LocalVerification = &off
	}
	data, err := json.Marshal(cfg)
	require.NoError(t, err)
	path := filepath.Join(dir, name+".yaml")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	args := []string{"--config=" + path, "--identity=" + name}
	proc, err := localcluster.StartProcess(ctx, name, bin, filepath.Join(dir, "logs"), args)
	require.NoError(t, err)
	gm := &gmProcess{name: name, proc: proc, channelPort: ports[0], healthAddr: cfg.HealthAddress, profilingAddr: cfg.ProfilingAddress, pids: []int{proc.PID()}}
	// As the kubelet would, start GM again whenever it exits (a GM that loses its Lease exits on
	// purpose), until the test kills it or stops.
	supervised := make(chan struct{})
	go func() {
		defer close(supervised)
		for {
			gm.mu.Lock()
			current := gm.proc
			gm.mu.Unlock()
			<-current.Done()
			gm.mu.Lock()
			if gm.stopped {
				gm.mu.Unlock()
				return
			}
			gm.restarts++
			next, err := localcluster.StartProcess(ctx, fmt.Sprintf("%s-restart-%d", name, gm.restarts), bin, filepath.Join(dir, "logs"), args)
			if err != nil {
				gm.stopped = true
				gm.mu.Unlock()
				t.Errorf("restarting %s: %v", name, err)
				return
			}
			gm.proc = next
			gm.pids = append(gm.pids, next.PID())
			gm.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		gm.mu.Lock()
		gm.stopped = true
		current := gm.proc
		gm.mu.Unlock()
		if exited, _ := current.Exited(); !exited {
			if err := current.Stop(); err != nil {
				t.Logf("stopping %s: %v", name, err)
			}
		}
		<-supervised
	})
	return gm
}

// pid is the running GM process's ID.
func (gm *gmProcess) pid() int {
	gm.mu.Lock()
	defer gm.mu.Unlock()
	return gm.proc.PID()
}

// kill sends SIGKILL to GM and keeps it down.
func (gm *gmProcess) kill() error {
	gm.mu.Lock()
	gm.stopped = true
	current := gm.proc
	gm.mu.Unlock()
	return current.Kill()
}

// restartCount is how many times GM exited and was started again.
func (gm *gmProcess) restartCount() int {
	gm.mu.Lock()
	defer gm.mu.Unlock()
	return gm.restarts
}

// leaderOf waits for a leader and returns its process.
func leaderOf(ctx context.Context, t testing.TB, kube kubernetes.Interface, gms []*gmProcess) *gmProcess {
	var leader *gmProcess
	waitFor(ctx, t, 2*time.Minute, "a GM leads", func() bool {
		leases, err := kube.CoordinationV1().Leases(fleetNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, l := range leases.Items {
			if l.Spec.HolderIdentity == nil {
				continue
			}
			for _, gm := range gms {
				if *l.Spec.HolderIdentity == gm.name {
					leader = gm
				}
			}
		}
		return leader != nil
	})
	return leader
}

// onlyReader and onlyWriter hide everything but Read and Write, so io.Copy neither splices nor
// uses sendfile.
type onlyReader struct{ io.Reader }

type onlyWriter struct{ io.Writer }

// countingProxy forwards GM's API requests to the API server and counts them.
type countingProxy struct {
	addr   string
	mu     sync.Mutex
	counts map[string]int
	// reviews are GM's TokenReviews: when each was answered and how long the API server took.
	reviews []timedRequest
}

type timedRequest struct {
	done    time.Time
	latency time.Duration
}

func startCountingProxy(t testing.TB, admin *rest.Config) *countingProxy {
	target, err := url.Parse(admin.Host)
	require.NoError(t, err)
	transport, err := rest.TransportFor(admin)
	require.NoError(t, err)
	cp := &countingProxy{counts: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = transport
	proxy.FlushInterval = -1
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := cp.count(r)
		start := time.Now()
		proxy.ServeHTTP(w, r)
		if key == "create tokenreviews" {
			now := time.Now()
			cp.mu.Lock()
			cp.reviews = append(cp.reviews, timedRequest{done: now, latency: now.Sub(start)})
			cp.mu.Unlock()
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	cp.addr = ln.Addr().String()
	return cp
}

// count files a request under its verb and resource (the path without namespace and name).
func (cp *countingProxy) count(r *http.Request) string {
	verb := map[string]string{http.MethodGet: "get", http.MethodPost: "create", http.MethodPut: "update",
		http.MethodPatch: "patch", http.MethodDelete: "delete"}[r.Method]
	if r.URL.Query().Get("watch") == "true" {
		verb = "watch"
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	resource := r.URL.Path
	for i, p := range parts {
		if p == "namespaces" && i+2 < len(parts) {
			parts = append(parts[:i], parts[i+2:]...)
			break
		}
	}
	// api/v1/pods/name or apis/group/version/resource/name[/sub]: keep the resource and subresource.
	skip := 2
	if len(parts) > 0 && parts[0] == "apis" {
		skip = 3
	}
	if len(parts) > skip {
		resource = parts[skip]
		if len(parts) > skip+2 {
			resource += "/" + parts[skip+2]
		}
	}
	cp.mu.Lock()
	cp.counts[verb+" "+resource]++
	cp.mu.Unlock()
	return verb + " " + resource
}

// reviewsSince describes GM's TokenReviews answered since t: how many, between which times
// (from t), their rate, and the API server's latency (through the proxy: GM's client-side
// limiter is not in it).
func (cp *countingProxy) reviewsSince(t time.Time) string {
	cp.mu.Lock()
	var lat []time.Duration
	var first, last time.Time
	for _, r := range cp.reviews {
		if r.done.After(t) {
			if first.IsZero() {
				first = r.done
			}
			lat = append(lat, r.latency)
			last = r.done
		}
	}
	cp.mu.Unlock()
	if len(lat) == 0 {
		return "none"
	}
	slices.Sort(lat)
	rate := "one"
	if last.After(first) {
		rate = fmt.Sprintf("%.0f/s", float64(len(lat)-1)/last.Sub(first).Seconds())
	}
	return fmt.Sprintf("%d answered from +%s to +%s (%s), API server latency p50 %s, p99 %s, max %s", len(lat),
		first.Sub(t).Round(time.Millisecond), last.Sub(t).Round(time.Millisecond), rate, lat[len(lat)/2].Round(time.Millisecond),
		lat[len(lat)*99/100].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
}

func (cp *countingProxy) snapshot() map[string]int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	out := make(map[string]int, len(cp.counts))
	for k, v := range cp.counts {
		out[k] = v
	}
	return out
}

// kubeconfig writes a kubeconfig that reaches the API server through the proxy.
func (cp *countingProxy) kubeconfig(t testing.TB, dir string) string {
	path := filepath.Join(dir, "gm-kubeconfig")
	data := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "http://%s"}}]
users: [{name: gm, user: {}}]
contexts: [{name: local, context: {cluster: local, user: gm}}]
current-context: local
`, cp.addr)
	require.NoError(t, os.WriteFile(path, []byte(data), 0o600))
	return path
}

// fleetLC is one simulated LC.
type fleetLC struct {
	store    *store.Store
	client   *gmclient.Client
	registry *prometheus.Registry
	// dials and applied are the client's dial and frame counters (read by the failover tracker).
	dials, applied *prometheus.CounterVec
	holds          atomic.Bool
	key            channel.Key
	// workload: the generator's objects this LC holds.
	mu       sync.Mutex
	workload map[store.ResourceKey]bool
}

type lcHandler struct{ lc *fleetLC }

func (h lcHandler) ResourceChanged(_ context.Context, r store.Resource) {
	if r.Key.Kind == h.lc.key.Kind && r.Key.Name == h.lc.key.Name {
		h.lc.holds.Store(true)
	}
	if isWorkload(r.Key) {
		h.lc.mu.Lock()
		if h.lc.workload == nil {
			h.lc.workload = map[store.ResourceKey]bool{}
		}
		h.lc.workload[r.Key] = true
		h.lc.mu.Unlock()
	}
}

func (h lcHandler) ResourceDeleted(_ context.Context, key store.ResourceKey) {
	h.lc.mu.Lock()
	delete(h.lc.workload, key)
	h.lc.mu.Unlock()
}

func isWorkload(key store.ResourceKey) bool {
	return (key.Kind == "jointinferenceservice" || key.Kind == "incrementallearningjob") && strings.HasPrefix(key.Name, workloadPrefix)
}

// processCPU is the user and system CPU time of a process.
func processCPU(t testing.TB, pid int) time.Duration {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	require.NoError(t, err)
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var ticks int64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseInt(f, 10, 64)
		require.NoError(t, err)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// processRSS is a process's resident set in bytes.
func processRSS(t testing.TB, pid int) uint64 {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	t.Fatal(errors.New("no VmRSS in /proc/<pid>/status"))
	return 0
}

// parallel runs fn(0..n-1) on bareWorkers goroutines, failing the test on the first error.
func parallel(ctx context.Context, t testing.TB, n int, fn func(ctx context.Context, i int) error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, bareWorkers)
	for w := range bareWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || errs[w] != nil {
					return
				}
				errs[w] = fn(ctx, i)
			}
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
}

// installCRDs creates build/crds and waits until they are served.
func installCRDs(t testing.TB, cfg *rest.Config) {
	opts := envtest.CRDInstallOptions{
		Paths: []string{filepath.Join(localcluster.RepoRoot(), "build", "crds")}, ErrorIfPathMissing: true,
		MaxTime: time.Minute, PollInterval: 100 * time.Millisecond,
	}
	_, err := envtest.InstallCRDs(cfg, opts)
	require.NoError(t, err)
}

// envRetryPeriod is GM's leader-election retry period from SCALE_GM_RETRY_PERIOD (e.g. "2s", the
// default before session 9, for a before/after); unset: GM's default (1 s).
func envRetryPeriod() time.Duration {
	d, err := time.ParseDuration(os.Getenv("SCALE_GM_RETRY_PERIOD"))
	if err != nil {
		return 0
	}
	return d
}

// failoverPhases records when, after the leader's SIGKILL, the standby acquired the Lease and
// began serving LCs.
type failoverPhases struct {
	wg                sync.WaitGroup
	acquired, serving time.Duration
}

// watchFailover follows the failover in the background: the Lease's holder and acquireTime, and
// the standby's readiness (it is ready once it serves LCs), each polled on its own every 50 ms so
// that a slow answer of the loaded API server does not delay noticing the other.
func watchFailover(ctx context.Context, kube kubernetes.Interface, standby *gmProcess, killed time.Time) *failoverPhases {
	p := &failoverPhases{}
	deadline := killed.Add(10 * time.Minute)
	poll := func(done func() bool) {
		for ctx.Err() == nil && time.Now().Before(deadline) && !done() {
			time.Sleep(50 * time.Millisecond)
		}
	}
	p.wg.Go(func() {
		poll(func() bool {
			lease, err := kube.CoordinationV1().Leases(fleetNamespace).Get(ctx, "sedna-gm", metav1.GetOptions{})
			if err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity == standby.name && lease.Spec.AcquireTime != nil {
				p.acquired = lease.Spec.AcquireTime.Sub(killed)
				return true
			}
			return false
		})
	})
	p.wg.Go(func() {
		client := &http.Client{Timeout: time.Second}
		poll(func() bool {
			resp, err := client.Get("http://" + standby.healthAddr + "/readyz")
			if err != nil {
				return false
			}
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.serving = time.Since(killed)
				return true
			}
			return false
		})
	})
	return p
}

func (p *failoverPhases) wait() (acquired, serving time.Duration) {
	p.wg.Wait()
	return p.acquired, p.serving
}

// gmProfile is a CPU profile being taken of a GM.
type gmProfile struct {
	path string
	done chan error
}

// profileGM takes a CPU profile of gm over d from its profiling address into path, in the
// background.
func profileGM(ctx context.Context, t testing.TB, gm *gmProcess, path string, d time.Duration) *gmProfile {
	p := &gmProfile{path: path, done: make(chan error, 1)}
	go func() {
		p.done <- func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet,
				fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", gm.profilingAddr, int(d.Seconds())), nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer func() { _ = resp.Body.Close() }()
			if resp.StatusCode != http.StatusOK {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				return fmt.Errorf("profile: %s: %s", resp.Status, body)
			}
			out, err := os.Create(path)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, resp.Body); err != nil {
				_ = out.Close()
				return err
			}
			return out.Close()
		}()
	}()
	return p
}

// top waits for the profile and returns the top of `go tool pprof -top` on it.
func (p *gmProfile) top(t testing.TB, bin string) string {
	require.NoError(t, <-p.done, "taking GM's CPU profile")
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=30", bin, p.path).CombinedOutput()
	require.NoError(t, err, "go tool pprof: %s", out)
	return string(out)
}

// openFiles is a process's open files and its soft limit on them.
func openFiles(t testing.TB, pid int) (open, limit int) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(limits), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			limit, err = strconv.Atoi(strings.Fields(rest)[0])
			require.NoError(t, err)
		}
	}
	return len(entries), limit
}
