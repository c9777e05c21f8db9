package realnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/sedna-go/sedna/test/localcluster"
)

// NodeSpec is one node of a Cluster.
type NodeSpec struct {
	// Name is the Node's name.
	Name string
	// Bridge and Subnet are its CNI bridge and pod range (Config.BridgeName, Config.Subnet).
	Bridge, Subnet string
	// Labels are set on the Node.
	Labels map[string]string
}

// Options configures Start.
type Options struct {
	// Dir holds everything: the control plane's files, and per node its containerd and kubelet.
	// Start sweeps what a previous run with the same Dir and nodes left (an interrupted test) and
	// empties it.
	Dir string
	// Nodes are the nodes, the first of which hosts kube-proxy's identity. At least one.
	Nodes []NodeSpec
	// ClusterCIDR covers every node's Subnet.
	ClusterCIDR string
	// ServiceCIDR is the Services' range; it must not be a loopback range (pods have their own
	// loopback), e.g. 10.254.0.0/24.
	ServiceCIDR string
	// Images are image archives imported into every node's containerd; the sandbox image
	// (DefaultSandboxImage) must be among them.
	Images []string
	// OwnedHostPaths are paths outside Dir that this run's pods or test create and nothing else
	// may have (the LC's store /var/lib/sedna, a demo's /data/mnist): Start refuses to start,
	// naming it, when one exists, and Stop removes them. KubeletHostPaths are always owned.
	OwnedHostPaths []string
	// SharedHostPaths are paths outside Dir that the pods may create but that may be there
	// already (the LC's hostPath /data): Stop removes them only when they did not exist before.
	SharedHostPaths []string
}

// Node is one running node.
type Node struct {
	Spec       NodeSpec
	Containerd *Containerd
	Kubelet    *Kubelet
}

// Cluster is a control plane with real nodes, a kube-proxy and the cluster DNS.
type Cluster struct {
	*localcluster.Cluster
	Client kubernetes.Interface
	Nodes  []*Node
	// Before is the host as it was before Start.
	Before *Host

	// HostPaths are the paths outside Dir the run creates (Options.OwnedHostPaths,
	// SharedHostPaths, KubeletHostPaths and their missing parents), removed by Stop.
	HostPaths *HostPaths

	opts   Options
	lock   *os.File
	proxy  *KubeProxy
	dns    *DNS
	logger klog.Logger
}

// Start starts the control plane (its apiserver reachable from pods), one containerd and kubelet
// per node, kube-proxy and the cluster DNS, and returns when every node is Ready. It first waits
// for LockPath, which the Cluster holds until Stop: one real-node cluster at a time per machine.
// The caller must call Stop, also when Start fails (it returns the partial Cluster then).
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	logger := klog.FromContext(ctx).WithName("realnode")
	ctx = klog.NewContext(ctx, logger)
	if opts.Dir == "" || len(opts.Nodes) == 0 || opts.ClusterCIDR == "" || opts.ServiceCIDR == "" {
		return nil, errors.New("realnode: Options.Dir, Nodes, ClusterCIDR and ServiceCIDR are required")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	c := &Cluster{opts: opts, logger: logger}
	if c.lock, err = lockHost(); err != nil {
		return nil, err
	}
	if c.HostPaths, err = ClaimHostPaths(append(slices.Clone(KubeletHostPaths), opts.OwnedHostPaths...), opts.SharedHostPaths); err != nil {
		return c, fmt.Errorf("realnode: %w", err)
	}
	if err := Sweep(ctx, opts); err != nil {
		return c, fmt.Errorf("removing what a previous run left: %w", err)
	}
	// Nothing is mounted below dir any more: removing it cannot reach through into the host.
	if err := os.RemoveAll(dir); err != nil {
		return c, fmt.Errorf("emptying %s: %w", dir, err)
	}
	if c.Before, err = c.SnapshotHost(ctx); err != nil {
		return c, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cp, err := localcluster.Start(ctx, localcluster.Options{
		Dir:         filepath.Join(dir, "control-plane"),
		ServiceCIDR: opts.ServiceCIDR,
		// GM reaches the apiserver from its pod through the kubernetes Service, which leads to a
		// node's bridge address: listen on every address. Clients still need a certificate of
		// the cluster CA or a token.
		APIServerArgs: []string{"--bind-address=0.0.0.0"},
	})
	if err != nil {
		return c, err
	}
	c.Cluster = cp
	if c.Client, err = kubernetes.NewForConfig(cp.Config); err != nil {
		return c, err
	}
	for _, spec := range opts.Nodes {
		n := &Node{Spec: spec}
		c.Nodes = append(c.Nodes, n)
		n.Containerd, err = StartContainerd(ctx, Config{
			Dir: filepath.Join(dir, spec.Name, "containerd"), Name: spec.Name, BridgeName: spec.Bridge, Subnet: spec.Subnet,
		})
		if err != nil {
			return c, err
		}
		if err := n.Containerd.ImportImages(ctx, opts.Images...); err != nil {
			return c, err
		}
	}
	// Pods route to each other's bridges through this machine.
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return c, fmt.Errorf("turning on IP forwarding: %w", err)
	}
	if err := c.publishAPIServer(ctx); err != nil {
		return c, err
	}
	var gateways []net.IP
	for _, n := range c.Nodes {
		gateways = append(gateways, n.Containerd.Gateway())
	}
	if c.dns, err = ServeDNS(ctx, c.Client, gateways...); err != nil {
		return c, err
	}
	if c.proxy, err = StartKubeProxy(ctx, KubeProxyConfig{
		Dir: filepath.Join(dir, "kube-proxy"), Cluster: cp, NodeName: opts.Nodes[0].Name, ClusterCIDR: opts.ClusterCIDR,
	}); err != nil {
		return c, err
	}
	for _, n := range c.Nodes {
		n.Kubelet, err = StartKubelet(ctx, KubeletConfig{
			Dir: filepath.Join(dir, n.Spec.Name, "kubelet"), Cluster: cp, Containerd: n.Containerd, Labels: n.Spec.Labels,
		})
		if err != nil {
			return c, err
		}
	}
	logger.Info("Real nodes are up", "nodes", len(c.Nodes), "kubeconfig", cp.Kubeconfig)
	return c, nil
}

// publishAPIServer points the kubernetes Service at the first node's bridge address and the
// apiserver's port (the local control plane runs with --endpoint-reconciler-type=none), as
// kube-apiserver would publish its advertise address.
func (c *Cluster) publishAPIServer(ctx context.Context) error {
	port, err := strconv.Atoi(c.APIServerPort())
	if err != nil {
		return err
	}
	addr := c.Nodes[0].Containerd.Gateway().String()
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: "kubernetes", Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: "kubernetes",
				discoveryv1.LabelManagedBy:   "sedna-realnode",
			},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{addr}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To(int32(port)), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	if _, err := c.Client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).Create(ctx, slice, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("publishing the apiserver's endpoint: %w", err)
	}
	return nil
}

// Node returns the node named name.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Spec.Name == name {
			return n
		}
	}
	return nil
}

// SnapshotHost is SnapshotHost watching the cluster's HostPaths.
func (c *Cluster) SnapshotHost(ctx context.Context) (*Host, error) {
	return SnapshotHost(ctx, c.HostPaths.Watched()...)
}

// Stop stops everything Start started and removes what it added to the host: pods (through CRI,
// so CNI removes their veths and addresses), containers, mounts, cgroups, bridges, the iptables
// chains of kubelet, kube-proxy and CNI (KUBE-*, CNI-*, those that did not exist before Start),
// the HostPaths that did not exist before, and the sysctls it or they changed; then it releases
// LockPath. The directory stays for its logs. Safe on a partial Cluster.
func (c *Cluster) Stop(ctx context.Context) error {
	if c.lock == nil {
		return nil // Start did not get the lock, or Stop ran already
	}
	defer func() {
		_ = c.lock.Close() // closing releases the lock
		c.lock = nil
	}()
	var errs []error
	for _, n := range c.Nodes {
		if n.Kubelet != nil {
			errs = append(errs, n.Kubelet.Stop())
		}
	}
	errs = append(errs, c.proxy.Stop())
	for _, n := range c.Nodes {
		if n.Containerd != nil {
			errs = append(errs, n.Containerd.Stop(ctx))
		}
		if n.Kubelet != nil {
			errs = append(errs, n.Kubelet.Sweep())
		}
	}
	if c.dns != nil {
		errs = append(errs, c.dns.Stop())
	}
	if c.Cluster != nil {
		errs = append(errs, c.Cluster.Stop())
	}
	errs = append(errs, Sweep(ctx, c.opts))
	// Nothing is mounted below Dir any more, nor runs: what the nodes made outside it can go.
	errs = append(errs, c.HostPaths.Release())
	if c.Before != nil {
		errs = append(errs, c.Before.RemoveIPTables(ctx, "KUBE-", "CNI-"))
		now, err := c.SnapshotHost(ctx)
		switch {
		case err != nil:
			errs = append(errs, err)
		case c.foreignChanges(now):
			// Links or mounts appeared that are not ours: another test on this machine builds
			// networks too, and may need IP forwarding on. Leave the sysctls as they are.
			c.logger.Info("Not restoring sysctls: the host's network changed outside these nodes", "changes", c.Before.Diff(now))
		default:
			errs = append(errs, c.Before.RestoreSysctls())
		}
	}
	return errors.Join(errs...)
}

// foreignChanges reports whether interfaces or mounts that are not these nodes' appeared.
func (c *Cluster) foreignChanges(now *Host) bool {
	n := 0
	for _, d := range c.Before.Diff(now) {
		if strings.HasPrefix(d, "link: added ") || strings.HasPrefix(d, "mount: added ") {
			n++
		}
	}
	for _, d := range c.Leftovers(now) {
		if strings.HasPrefix(d, "link: added ") || strings.HasPrefix(d, "mount: added ") {
			n--
		}
	}
	return n > 0
}

// Leftovers is what after has that the host had not before Start and that these nodes made:
// iptables and ip6tables chains and rules (anyone's), interfaces that are the nodes' bridges or
// veths, mounts under Dir, HostPaths that did not exist before (after must watch them:
// Cluster.SnapshotHost), and changed sysctls — unless interfaces or mounts of another program
// (another test sharing the machine) appeared too, as a sysctl may then be its.
func (c *Cluster) Leftovers(after *Host) []string {
	var bridges []string
	for _, n := range c.opts.Nodes {
		bridges = append(bridges, n.Bridge)
	}
	return c.Before.Leftovers(after, c.opts.Dir, bridges...)
}

// Leftovers is Diff restricted to what a run in dir with these bridges made (Cluster.Leftovers).
func (h *Host) Leftovers(after *Host, dir string, bridges ...string) []string {
	ours := map[string]bool{}
	for _, b := range bridges {
		ours[b] = true
	}
	var out, sysctls []string
	foreign := false
	for _, d := range h.Diff(after) {
		if name, ok := strings.CutPrefix(d, "link: added "); ok {
			if !ours[name] && !strings.HasPrefix(name, "veth") {
				foreign = true
				continue
			}
		}
		if m, ok := strings.CutPrefix(d, "mount: added "); ok {
			if m != dir && !strings.HasPrefix(m, dir+"/") {
				foreign = true
				continue
			}
		}
		if strings.HasPrefix(d, "sysctl ") {
			sysctls = append(sysctls, d)
			continue
		}
		out = append(out, d)
	}
	// With another program's network on the host, a changed sysctl may be its (Stop leaves them).
	if !foreign {
		out = append(out, sysctls...)
	}
	return out
}

// Sweep removes what a run with these options may have left on the host, from names alone (the
// processes may be gone): containers and shims of each node's containerd, mounts under Dir, the
// bridges and the kubelets' cgroups.
func Sweep(ctx context.Context, opts Options) error {
	var errs []error
	for _, spec := range opts.Nodes {
		errs = append(errs, SweepContainerd(ctx, filepath.Join(opts.Dir, spec.Name, "containerd"), spec.Bridge))
		errs = append(errs, removeCgroup(cgroupRootFor(filepath.Join(opts.Dir, spec.Name, "kubelet"), spec.Name)))
	}
	errs = append(errs, unmountUnder(opts.Dir))
	return errors.Join(errs...)
}
