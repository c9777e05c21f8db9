package localcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/test/internal/freeport"
)

const (
	serviceCIDRPattern = "127.100.%d.0/24"
	// serviceAccountIssuer is what kubeadm clusters use, so tokens look like a real cluster's.
	serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"
	// startTimeout bounds each readiness wait; a cold apiserver under the race-enabled test binary
	// on two cores takes several seconds to install its bootstrap RBAC and priority classes.
	startTimeout = 90 * time.Second
	// nodeMonitorGracePeriod is how long the node-lifecycle controller waits for a heartbeat before
	// it marks a node NotReady and evicts its pods. Integration tests register Node objects that
	// nothing heartbeats, so it is set far beyond any test or local-up session (a caller whose
	// nodes do heartbeat sets its own with ControllerManagerArgs, as local Sedna does for edge
	// nodes in network namespaces); the controller still runs, because it is what removes the
	// not-ready taint the TaintNodesByCondition admission plugin puts on every new node.
	nodeMonitorGracePeriod = 24 * time.Hour
)

// Options configures Start.
type Options struct {
	// Dir is the working directory: certificates, etcd data, logs/<process>.log and kubeconfig.
	// Required; created if missing. Start replaces what a previous run left there: the cluster
	// always starts empty.
	Dir string
	// BinDir holds etcd, kube-apiserver, kube-controller-manager and kube-scheduler. Defaults to
	// <repo>/_output/bin.
	BinDir string
	// ServiceCIDR is the service cluster-IP range. Defaults to a random 127.100.X.0/24, inside the loopback
	// range so that cluster IPs can later be served on this machine without touching its network.
	ServiceCIDR string
	// ControllerManagerArgs are appended to kube-controller-manager's flags (a later flag wins):
	// the scale tests raise its client rate limits so that the pods of thousands of Deployments
	// appear in seconds, not minutes.
	ControllerManagerArgs []string
	// APIServerArgs are appended to kube-apiserver's flags (a later flag wins): the real-node tier
	// (test/realnode) binds it where pods can reach it.
	APIServerArgs []string
}

// Cluster is a running local control plane.
type Cluster struct {
	// Kubeconfig is the path of an admin (system:masters) kubeconfig.
	Kubeconfig string
	// Config is the same admin identity as a rest.Config.
	Config *rest.Config
	// Dir is the working directory the cluster was started in.
	Dir string

	client kubernetes.Interface
	logger klog.Logger
	// processes in start order; Stop ends them in reverse.
	processes []*process
}

// ports the control plane listens on, all on 127.0.0.1.
type ports struct {
	etcdClient, etcdPeer, apiserver, controllerManager, scheduler int
}

// RepoRoot returns the repository's top directory, found from this file's location.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Start starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler and returns once
// all of them are healthy. On failure everything already started is stopped and the error carries
// the tail of the failing process's log. The caller must call Stop.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	logger := klog.FromContext(ctx).WithName("localcluster")
	ctx = klog.NewContext(ctx, logger)
	if opts.Dir == "" {
		return nil, errors.New("localcluster: Options.Dir is required")
	}
	if opts.BinDir == "" {
		opts.BinDir = filepath.Join(RepoRoot(), "_output", "bin")
	}
	if opts.ServiceCIDR == "" {
		// A range of its own per cluster, so that clusters started side by side (test packages run
		// in parallel) never serve the same cluster IP on this machine.
		opts.ServiceCIDR = fmt.Sprintf(serviceCIDRPattern, rand.IntN(256))
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolving working directory %s: %w", opts.Dir, err)
	}
	binaries := map[string]string{}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		path := filepath.Join(opts.BinDir, name)
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("control-plane binary %s missing in %s (run hack/install-test-binaries.sh): %w", name, opts.BinDir, err)
		}
		binaries[name] = path
	}
	serviceIP, err := firstServiceIP(opts.ServiceCIDR)
	if err != nil {
		return nil, err
	}
	certDir, logDir, etcdDir := filepath.Join(dir, "pki"), filepath.Join(dir, "logs"), filepath.Join(dir, "etcd")
	// Every Start issues new keys, so a previous run's store would hold service-account tokens and
	// secrets nobody can verify, and an etcd member bound to other ports: always start empty.
	if err := os.RemoveAll(etcdDir); err != nil {
		return nil, fmt.Errorf("removing the previous etcd data in %s: %w", etcdDir, err)
	}
	for _, d := range []string{certDir, logDir, etcdDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	pki, err := generatePKI(certDir, serviceIP)
	if err != nil {
		return nil, fmt.Errorf("generating certificates: %w", err)
	}
	p, err := freePorts()
	if err != nil {
		return nil, err
	}

	c := &Cluster{Dir: dir, Kubeconfig: filepath.Join(dir, "kubeconfig"), logger: logger}
	c.Config = &rest.Config{
		Host: "https://127.0.0.1:" + strconv.Itoa(p.apiserver),
		TLSClientConfig: rest.TLSClientConfig{
			CAData: pki.caPEM, CertData: pki.adminCertPEM, KeyData: pki.adminKeyPEM,
		},
		QPS: 100, Burst: 200,
	}
	if err := c.start(ctx, binaries, logDir, etcdDir, pki, p, opts); err != nil {
		if stopErr := c.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stopping after failed start: %w", stopErr))
		}
		return nil, err
	}
	logger.Info("Local cluster is up", "apiserver", c.Config.Host, "kubeconfig", c.Kubeconfig, "logs", logDir)
	return c, nil
}

func (c *Cluster) start(ctx context.Context, binaries map[string]string, logDir, etcdDir string, pki *pki, p ports, opts Options) error {
	serviceCIDR := opts.ServiceCIDR
	etcdClientURL := "http://127.0.0.1:" + strconv.Itoa(p.etcdClient)
	etcdPeerURL := "http://127.0.0.1:" + strconv.Itoa(p.etcdPeer)
	etcd, err := c.launch(ctx, "etcd", binaries["etcd"], logDir, []string{
		"--name=local",
		"--data-dir=" + etcdDir,
		"--listen-client-urls=" + etcdClientURL,
		"--advertise-client-urls=" + etcdClientURL,
		"--listen-peer-urls=" + etcdPeerURL,
		"--initial-advertise-peer-urls=" + etcdPeerURL,
		"--initial-cluster=local=" + etcdPeerURL,
		// A throwaway test store: fsync on every write only slows the tests down.
		"--unsafe-no-fsync",
	})
	if err != nil {
		return err
	}
	if err := waitHealthy(ctx, etcd, http.DefaultClient, etcdClientURL+"/health"); err != nil {
		return err
	}

	apiserver, err := c.launch(ctx, "kube-apiserver", binaries["kube-apiserver"], logDir, append([]string{
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(p.apiserver),
		// Endpoints may not hold loopback addresses, so the apiserver cannot publish itself behind
		// the kubernetes service; it is reached by its loopback address instead.
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		// Nodes are reached by their loopback InternalIP (kubectl logs through the process nodes).
		"--kubelet-preferred-address-types=InternalIP",
		"--cert-dir=" + filepath.Join(filepath.Dir(pki.caCert), "apiserver"),
		"--tls-cert-file=" + pki.apiserverCert,
		"--tls-private-key-file=" + pki.apiserverKey,
		"--client-ca-file=" + pki.caCert,
		"--etcd-servers=" + etcdClientURL,
		// RBAC only: the Node authorizer is for kubelets, and there are none yet.
		"--authorization-mode=RBAC",
		"--service-account-issuer=" + serviceAccountIssuer,
		"--service-account-key-file=" + pki.serviceAccountPub,
		"--service-account-signing-key-file=" + pki.serviceAccountKey,
		"--api-audiences=" + serviceAccountIssuer,
		"--service-cluster-ip-range=" + serviceCIDR,
		"--allow-privileged=true",
		// The front-proxy settings of a kubeadm cluster: aggregated APIs need them, and the
		// controller-manager and scheduler read them from kube-system/extension-apiserver-authentication
		// (without them they log an error every few seconds).
		"--requestheader-client-ca-file=" + pki.frontProxyCA,
		"--requestheader-allowed-names=" + frontProxyClientName,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + pki.frontProxyClientCert,
		"--proxy-client-key-file=" + pki.frontProxyClientKey,
		// For real kubelets (test/realnode): logs and exec reach them with this identity.
		"--kubelet-client-certificate=" + pki.kubeletClientCert,
		"--kubelet-client-key=" + pki.kubeletClientKey,
	}, opts.APIServerArgs...))
	if err != nil {
		return err
	}
	if err := c.waitAPIServerReady(ctx, apiserver); err != nil {
		return err
	}
	if err := c.writeKubeconfig(pki); err != nil {
		return err
	}

	componentHTTP, err := componentHealthClient(pki.caPEM)
	if err != nil {
		return err
	}
	commonComponentArgs := func(port int) []string {
		return []string{
			"--kubeconfig=" + c.Kubeconfig,
			"--authentication-kubeconfig=" + c.Kubeconfig,
			"--authorization-kubeconfig=" + c.Kubeconfig,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(port),
			"--tls-cert-file=" + pki.componentCert,
			"--tls-private-key-file=" + pki.componentKey,
			// One instance of each; leader election would only delay the start by a lease period.
			"--leader-elect=false",
		}
	}
	controllerManager, err := c.launch(ctx, "kube-controller-manager", binaries["kube-controller-manager"], logDir,
		append(append(commonComponentArgs(p.controllerManager),
			// Each controller gets its own service account, so RBAC is exercised as on a real cluster.
			"--use-service-account-credentials=true",
			"--service-account-private-key-file="+pki.serviceAccountKey,
			"--root-ca-file="+pki.caCert,
			"--cluster-signing-cert-file="+pki.caCert,
			"--cluster-signing-key-file="+pki.caKey,
			// The default set minus what needs a cloud or pod CIDRs (nodeipam stays off without
			// --allocate-node-cidrs; cloud-node-lifecycle, route and service-lb need a cloud
			// provider and are skipped without one).
			"--controllers=*",
			"--node-monitor-grace-period="+nodeMonitorGracePeriod.String(),
		), opts.ControllerManagerArgs...))
	if err != nil {
		return err
	}
	scheduler, err := c.launch(ctx, "kube-scheduler", binaries["kube-scheduler"], logDir,
		commonComponentArgs(p.scheduler))
	if err != nil {
		return err
	}
	if err := waitHealthy(ctx, controllerManager, componentHTTP, "https://127.0.0.1:"+strconv.Itoa(p.controllerManager)+"/healthz"); err != nil {
		return err
	}
	return waitHealthy(ctx, scheduler, componentHTTP, "https://127.0.0.1:"+strconv.Itoa(p.scheduler)+"/healthz")
}

func (c *Cluster) launch(ctx context.Context, name, binary, logDir string, args []string) (*process, error) {
	proc, err := startProcess(ctx, name, binary, logDir, args)
	if err != nil {
		return nil, err
	}
	c.processes = append(c.processes, proc)
	return proc, nil
}

// waitHealthy polls url until it answers 200, failing early if the process exits.
func waitHealthy(ctx context.Context, proc *process, client *http.Client, url string) error {
	var lastErr error
	err := poll(ctx, proc, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, fmt.Errorf("building health request for %s: %w", url, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			lastErr = err
			return false, nil
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096)) // only for the error message
		_ = resp.Body.Close()                                  // fully read or abandoned; nothing to report
		if resp.StatusCode != http.StatusOK {
			lastErr = fmt.Errorf("%s answered %d: %s", url, resp.StatusCode, body)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s to become healthy (last check: %v): %w\n--- tail of %s ---\n%s",
			proc.name, lastErr, err, proc.logPath, proc.logTail())
	}
	return nil
}

func (c *Cluster) waitAPIServerReady(ctx context.Context, proc *process) error {
	client, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return fmt.Errorf("building the admin client: %w", err)
	}
	c.client = client
	var lastErr error
	err = poll(ctx, proc, func(ctx context.Context) (bool, error) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			lastErr = fmt.Errorf("%w: %s", err, body)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for kube-apiserver /readyz (last check: %v): %w\n--- tail of %s ---\n%s",
			lastErr, err, proc.logPath, proc.logTail())
	}
	return nil
}

// poll runs check until it succeeds, startTimeout passes, or proc exits.
func poll(ctx context.Context, proc *process, check wait.ConditionWithContextFunc) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, startTimeout, true, func(ctx context.Context) (bool, error) {
		if done, err := proc.exited(); done {
			return false, fmt.Errorf("%s exited during start-up: %v", proc.name, err)
		}
		return check(ctx)
	})
}

// componentHealthClient verifies the controller-manager's and scheduler's serving certificate
// against the cluster CA.
func componentHealthClient(caPEM []byte) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the generated CA certificate is not valid PEM")
	}
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}, nil
}

func (c *Cluster) writeKubeconfig(pki *pki) error {
	const name = "sedna-local"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: c.Config.Host, CertificateAuthorityData: pki.caPEM}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: pki.adminCertPEM, ClientKeyData: pki.adminKeyPEM}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	if err := clientcmd.WriteToFile(*cfg, c.Kubeconfig); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", c.Kubeconfig, err)
	}
	return nil
}

// Stop stops every process the cluster started, newest first, so that no component is left talking
// to a vanished apiserver, and returns once all of them have been reaped. The working directory is
// kept for its logs. Stop is safe to call more than once.
func (c *Cluster) Stop() error {
	var errs []error
	for i := len(c.processes) - 1; i >= 0; i-- {
		if err := c.processes[i].stop(c.logger); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// PIDs returns the process ID of every process Start launched, by name.
func (c *Cluster) PIDs() map[string]int {
	pids := make(map[string]int, len(c.processes))
	for _, proc := range c.processes {
		pids[proc.name] = proc.pid()
	}
	return pids
}

// firstServiceIP is the address the apiserver gives the kubernetes service; it must be in the
// apiserver's certificate for in-cluster clients.
func firstServiceIP(cidr string) (net.IP, error) {
	_, ipNet, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil, fmt.Errorf("parsing service CIDR %q: %w", cidr, err)
	}
	ip := ipNet.IP.To4()
	if ip == nil {
		ip = ipNet.IP.To16()
	}
	first := make(net.IP, len(ip))
	copy(first, ip)
	first[len(first)-1]++
	if !ipNet.Contains(first) {
		return nil, fmt.Errorf("service CIDR %q has no room for the kubernetes service IP", cidr)
	}
	return first, nil
}

// freePorts picks five distinct free loopback ports (freeport.Loopback: outside the ranges the
// kernel hands out, so no connection of another test can take one before its process binds it).
func freePorts() (ports, error) {
	nums, err := freeport.Loopback(5)
	if err != nil {
		return ports{}, err
	}
	return ports{etcdClient: nums[0], etcdPeer: nums[1], apiserver: nums[2], controllerManager: nums[3], scheduler: nums[4]}, nil
}
