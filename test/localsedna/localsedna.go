package localsedna

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	sednaclientset "github.com/sedna-go/sedna/pkg/client/clientset/versioned"
	"github.com/sedna-go/sedna/test/localcluster"
	"github.com/sedna-go/sedna/test/netns"
	"github.com/sedna-go/sedna/test/processnode"
	"github.com/sedna-go/sedna/test/serviceproxy"
)

const (
	// SednaNamespace is where GM's and LC's objects live, as in build/.
	SednaNamespace = "sedna"
	// CloudNode is the name of the one cloud node.
	CloudNode = "cloud-node"
	// EdgeLabel is the label KubeEdge puts on edge nodes; build/lc's DaemonSet selects on it.
	EdgeLabel = "node-role.kubernetes.io/edge"
	// LCPort is the LC worker API port on every node's address (BIND_PORT in build/lc).
	LCPort = 9100
	// readyTimeout bounds each wait for a component to come up.
	readyTimeout = 2 * time.Minute
)

// EdgeNodeName is the name of the i-th edge node, counting from 1.
func EdgeNodeName(i int) string { return fmt.Sprintf("edge-node-%d", i) }

// TestImages are the images of test-only workers, beside the image table's (which lists what
// build/ ships): image → binary in BinDir, built by the suites that use them.
var TestImages = map[string]string{
	// The fault campaign's reporter (test/chaos/chaos-reporter).
	"sedna-test/chaos-reporter": "chaos-reporter",
}

// Options configures Start.
type Options struct {
	// Dir is the working directory: cluster/, nodes/<node>/, gm/, logs/. Required.
	Dir string
	// EdgeNodes is the number of edge nodes; default 2.
	EdgeNodes int
	// BinDir holds the control-plane binaries, sedna-gm, sedna-lc and the example workers;
	// default <repo>/_output/bin.
	BinDir string
	// ImageTable maps container images to binaries; default <repo>/hack/local-up/images.txt.
	ImageTable string
	// DatasetCheckPeriod is how often LCs count dataset samples (--dataset-check-period); zero
	// keeps the LC's default.
	DatasetCheckPeriod time.Duration
	// LCGMAddress, when set, maps GM's channel address (host:port) to the address the LCs dial
	// instead: a relay the caller controls, to cut the edge off from the cloud (test/chaos) or
	// to follow a standby GM that took over. Nil: the LCs dial GM directly.
	LCGMAddress func(gmAddress string) (string, error)
	// NodeSubnet is the third byte of the nodes' loopback addresses 127.0.<NodeSubnet>.x;
	// default 1. Another value lets a second local Sedna run beside the first (the fault
	// campaign next to an e2e run), since each node serves the kubelet port on its address.
	NodeSubnet int
	// EdgeNetwork, when set, puts every edge node in a network namespace of its own (test/netns,
	// root only; its caller creates and closes it, with one link per edge node): edge node i's
	// address is EdgeNetwork.Links[i-1].NodeIP, and its LC and workers run in the namespace.
	// What the edge reaches on the cloud side is served where the namespaces reach it: GM's
	// channel on EdgeCloudIP (GM's certificate names it), the service proxy's cluster IPs in
	// the cloud range (the cluster's service CIDR is its lower half). Nil: every node on a
	// loopback address of this machine.
	EdgeNetwork *netns.Network
	// EdgeStoreSize, when positive, mounts a tmpfs of this many bytes on every edge node's
	// /var/lib/sedna (the LC's store) before the LCs start, so that a test can fill it
	// (FillEdgeStore); root only. Stop unmounts it, and Start unmounts what a killed run left.
	EdgeStoreSize int64
	// LogRecordedReports runs GM with --vmodule=workerreports=4,marks=4: one log line per worker
	// report GM records, with its values and sequence number, which the fault campaign counts by
	// the IDs its test workers put in them (test/chaos), and one per report mark GM writes. Off
	// for anything that runs long (local-up): the lines add up.
	LogRecordedReports bool
}

// EdgeCloudIP is the host in the cloud range that GM's channel is served on when the edge nodes
// live in network namespaces (the upper half of the range, away from the cluster IPs).
func EdgeCloudIP(n *netns.Network) string { return n.CloudAddress(200) }

// cloudHost is the address GM's channel listens on: reachable by the edge nodes.
func (o *Options) cloudHost() string {
	if o.EdgeNetwork != nil {
		return EdgeCloudIP(o.EdgeNetwork)
	}
	return "127.0.0.1"
}

func (o *Options) setDefaults() error {
	if o.Dir == "" {
		return errors.New("localsedna: Options.Dir is required")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", o.Dir, err)
	}
	o.Dir = dir
	if o.EdgeNodes <= 0 {
		o.EdgeNodes = 2
	}
	if o.NodeSubnet == 0 {
		o.NodeSubnet = 1
	}
	if o.NodeSubnet < 1 || o.NodeSubnet > 254 {
		return fmt.Errorf("localsedna: NodeSubnet %d is not in 1..254", o.NodeSubnet)
	}
	if o.EdgeNodes > 200 {
		return fmt.Errorf("localsedna: %d edge nodes do not fit 127.0.1.0/24", o.EdgeNodes)
	}
	if o.EdgeNetwork != nil && len(o.EdgeNetwork.Links) != o.EdgeNodes {
		return fmt.Errorf("localsedna: the edge network has %d links for %d edge nodes", len(o.EdgeNetwork.Links), o.EdgeNodes)
	}
	root := localcluster.RepoRoot()
	if o.BinDir == "" {
		o.BinDir = filepath.Join(root, "_output", "bin")
	}
	if o.ImageTable == "" {
		o.ImageTable = filepath.Join(root, "hack", "local-up", "images.txt")
	}
	return nil
}

// Node is one process node.
type Node struct {
	Name string
	// IP is the node's loopback address, its pods' IP and host IP.
	IP string
	// Root is the node's directory; its hostPath "/" is Root/host.
	Root string
	Edge bool
	// NetNS is the file of the node's network namespace (Options.EdgeNetwork), empty if none.
	NetNS string
}

// HostPath is where path on this node's host file system is on this machine.
func (n Node) HostPath(path string) string {
	return filepath.Join(n.Root, "host", filepath.Clean("/"+path))
}

// LogDir holds the node's container logs, <namespace>_<pod>_<container>.log.
func (n Node) LogDir() string { return filepath.Join(n.Root, "logs") }

// Sedna is a running local Sedna.
type Sedna struct {
	opts Options
	// Kubeconfig is an admin kubeconfig.
	Kubeconfig string
	Cluster    *localcluster.Cluster
	Kube       kubernetes.Interface
	Client     sednaclientset.Interface
	Proxy      *serviceproxy.Proxy
	// Nodes: the cloud node first, then the edge nodes.
	Nodes []Node

	logger klog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// nodeErrs receives a node's error if it stops before Stop.
	nodeErrs chan error

	gmMu sync.Mutex
	gm   *gmProcess
	// standby is the second GM of StartStandbyGM, nil until then.
	standby *gmProcess

	kbTokens KBTokens
	// nodeAPIAddr is where edge nodes in network namespaces reach the API server (serveNodeAPI);
	// waitNodeAPI waits for that forwarder's end (nil without namespaces).
	nodeAPIAddr string
	waitNodeAPI func()
}

// Node returns the node called name.
func (s *Sedna) Node(name string) (Node, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// LogDir holds GM's log (sedna-gm.log) and the control plane's.
func (s *Sedna) LogDir() string { return filepath.Join(s.opts.Dir, "logs") }

// BinDir is where the binaries come from.
func (s *Sedna) BinDir() string { return s.opts.BinDir }

// Start brings up the control plane, the nodes, the service proxy, GM and the LCs, and returns
// once every LC is connected to GM. On error everything started is stopped.
func Start(ctx context.Context, opts Options) (*Sedna, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	logger := klog.FromContext(ctx).WithName("localsedna")
	ctx = klog.NewContext(ctx, logger)
	for _, name := range []string{"sedna-gm", "sedna-lc", "sedna-kb", "kubectl"} {
		if _, err := os.Stat(filepath.Join(opts.BinDir, name)); err != nil {
			return nil, fmt.Errorf("%s is missing in %s (run make build install-test-binaries): %w", name, opts.BinDir, err)
		}
	}
	images, err := processnode.LoadImageTable(opts.ImageTable, opts.BinDir)
	if err != nil {
		return nil, err
	}
	for image, binary := range TestImages {
		if _, ok := images[image]; !ok {
			images[image] = filepath.Join(opts.BinDir, binary)
		}
	}
	// Every start is a new cluster: nodes' state (LC stores, hostPaths) from a previous run would
	// describe objects that no longer exist. A killed run may have left its stores mounted.
	if err := unmountUnder(filepath.Join(opts.Dir, "nodes")); err != nil {
		return nil, fmt.Errorf("clearing the previous run: %w", err)
	}
	for _, d := range []string{"nodes", "gm", "logs"} {
		if err := os.RemoveAll(filepath.Join(opts.Dir, d)); err != nil {
			return nil, fmt.Errorf("clearing the previous run: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	clusterOpts := localcluster.Options{Dir: filepath.Join(opts.Dir, "cluster"), BinDir: opts.BinDir}
	if opts.EdgeNetwork != nil {
		// Cluster IPs the namespaces reach: the lower half of the cloud range.
		clusterOpts.ServiceCIDR = strings.TrimSuffix(opts.EdgeNetwork.CloudCIDR, "/24") + "/25"
		clusterOpts.ControllerManagerArgs = []string{"--node-monitor-grace-period=" + nodeMonitorGracePeriod}
	}
	cluster, err := localcluster.Start(ctx, clusterOpts)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(klog.NewContext(context.Background(), logger))
	s := &Sedna{
		opts: opts, Kubeconfig: cluster.Kubeconfig, Cluster: cluster, logger: logger, cancel: cancel,
		nodeErrs: make(chan error, opts.EdgeNodes+1),
	}
	if err := s.start(ctx, runCtx, images); err != nil {
		if stopErr := s.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stopping after a failed start: %w", stopErr))
		}
		return nil, err
	}
	logger.Info("Local Sedna is up", "kubeconfig", s.Kubeconfig, "nodes", len(s.Nodes), "logs", s.LogDir())
	return s, nil
}

func (s *Sedna) start(ctx, runCtx context.Context, images processnode.ImageTable) error {
	var err error
	if s.Kube, err = kubernetes.NewForConfig(s.Cluster.Config); err != nil {
		return fmt.Errorf("building the Kubernetes client: %w", err)
	}
	if s.Client, err = sednaclientset.NewForConfig(s.Cluster.Config); err != nil {
		return fmt.Errorf("building the Sedna client: %w", err)
	}
	root := localcluster.RepoRoot()
	if out, err := s.Kubectl(ctx, "create", "-f", filepath.Join(root, "build", "crds")); err != nil {
		return fmt.Errorf("installing the CRDs: %w\n%s", err, out)
	}
	if _, err := s.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SednaNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", SednaNamespace, err)
	}
	if out, err := s.Kubectl(ctx, "apply", "-f", filepath.Join(root, "build", "gm", "rbac.yaml")); err != nil {
		return fmt.Errorf("installing GM's RBAC: %w\n%s", err, out)
	}
	if s.Proxy, err = serviceproxy.Run(runCtx, s.Kube, serviceproxy.Options{}); err != nil {
		return fmt.Errorf("starting the service proxy: %w", err)
	}
	if s.waitNodeAPI, err = s.serveNodeAPI(runCtx); err != nil {
		return err
	}
	if err := s.startNodes(ctx, runCtx, images); err != nil {
		return err
	}
	if err := s.startKB(ctx); err != nil {
		return err
	}
	if err := s.StartGM(ctx); err != nil {
		return err
	}
	if err := s.startLCs(ctx); err != nil {
		return err
	}
	return nil
}

// startNodes registers the cloud node and the edge nodes and waits until all are Ready.
func (s *Sedna) startNodes(ctx, runCtx context.Context, images processnode.ImageTable) error {
	s.Nodes = append(s.Nodes, Node{Name: CloudNode, IP: fmt.Sprintf("127.0.%d.1", s.opts.NodeSubnet), Root: filepath.Join(s.opts.Dir, "nodes", CloudNode)})
	for i := 1; i <= s.opts.EdgeNodes; i++ {
		n := Node{Name: EdgeNodeName(i), IP: fmt.Sprintf("127.0.%d.%d", s.opts.NodeSubnet, i+1),
			Root: filepath.Join(s.opts.Dir, "nodes", EdgeNodeName(i)), Edge: true}
		if s.opts.EdgeNetwork != nil {
			link := s.opts.EdgeNetwork.Links[i-1]
			n.IP, n.NetNS = link.NodeIP, link.Path()
		}
		if s.opts.EdgeStoreSize > 0 {
			if err := mountStore(n.HostPath(lcStoreDir), s.opts.EdgeStoreSize); err != nil {
				return err
			}
		}
		s.Nodes = append(s.Nodes, n)
	}
	for _, n := range s.Nodes {
		labels := map[string]string{}
		if n.Edge {
			// What keadm join sets on a KubeEdge edge node.
			labels[EdgeLabel] = ""
			labels["node-role.kubernetes.io/agent"] = ""
		}
		opts := processnode.NodeOptions{Name: n.Name, Labels: labels, IP: n.IP, Root: n.Root, Images: images,
			IsolateHosts: true, ClusterHosts: s.Proxy.Hosts, NetNS: n.NetNS, ObjectClient: s.Kube}
		client, err := s.nodeClient(n)
		if err != nil {
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := processnode.RunNode(runCtx, client, opts); err != nil {
				s.nodeErrs <- fmt.Errorf("node %s: %w", n.Name, err)
			}
		}()
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, readyTimeout, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-s.nodeErrs:
			return false, err
		default:
		}
		for _, n := range s.Nodes {
			node, err := s.Kube.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil || !localcluster.NodeReady(node) {
				return false, nil //nolint:nilerr // not registered yet
			}
		}
		return true, nil
	})
}

// Kubectl runs kubectl with the admin kubeconfig and returns its combined output.
func (s *Sedna) Kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.opts.BinDir, "kubectl"), append([]string{"--kubeconfig", s.Kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Stop stops GM, every pod's processes (through the nodes), the proxy and the control plane,
// and returns once all of them have exited. Safe to call more than once.
func (s *Sedna) Stop() error {
	var errs []error
	if err := s.StopGM(); err != nil {
		errs = append(errs, err)
	}
	if err := s.stopStandbyGM(); err != nil {
		errs = append(errs, err)
	}
	s.cancel()
	s.wg.Wait()
	if s.Proxy != nil {
		s.Proxy.Wait()
	}
	if s.waitNodeAPI != nil {
		s.waitNodeAPI()
	}
	if err := s.Cluster.Stop(); err != nil {
		errs = append(errs, err)
	}
	if err := unmountUnder(filepath.Join(s.opts.Dir, "nodes")); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Err returns the error of a node that stopped on its own, if any.
func (s *Sedna) Err() error {
	select {
	case err := <-s.nodeErrs:
		s.nodeErrs <- err
		return err
	default:
		return nil
	}
}

// tail returns the last n bytes of a file for diagnostics.
func tail(path string, n int64) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	if int64(len(data)) > n {
		data = data[int64(len(data))-n:]
		if i := strings.IndexByte(string(data), '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return string(data)
}
