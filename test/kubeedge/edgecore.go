package kubeedge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/test/internal/freeport"
	"github.com/sedna-go/sedna/test/localcluster"
)

// EdgeLabel is the label of KubeEdge edge nodes; cloudcore serves only nodes that carry it
// (empty value), and Sedna's LC DaemonSet selects on it.
const EdgeLabel = "node-role.kubernetes.io/edge"

// EdgeCoreOptions configures StartEdgeCore.
type EdgeCoreOptions struct {
	// Dir holds edgecore.yaml, its certificates, database, edged's root directory and pod logs.
	// Required; emptied first (after unmounting what a previous run left mounted there).
	Dir      string
	Binaries Binaries
	// NodeName is the edge node's name; NodeIP its address (InternalIP; the LC binds its worker
	// API there, hostNetwork).
	NodeName, NodeIP string
	// Labels are extra node labels (edged's nodeLabels; like the kubelet's --node-labels, not in
	// the kubernetes.io namespace). edged sets EdgeLabel itself.
	Labels map[string]string
	// RuntimeEndpoint is the CRI socket, unix:///.../containerd.sock.
	RuntimeEndpoint string
	// PodSandboxImage is the pause image the runtime has (nothing can be pulled).
	PodSandboxImage string
	// ClusterDNS are the nameservers of ClusterFirst pods; empty: the node's resolv.conf.
	ClusterDNS []string
	CloudCore  *CloudCore
	Kube       kubernetes.Interface
}

// EdgeCore is a running edgecore: one KubeEdge edge node.
type EdgeCore struct {
	NodeName string
	Dir      string
	// RootDir is edged's root directory (the kubelet's /var/lib/kubelet).
	RootDir string
	// ReadOnlyPort is edged's read-only kubelet port on 127.0.0.1 (edged polls its own healthz
	// there, so it must not be 0).
	ReadOnlyPort int
	proc         *localcluster.Process
	kube         kubernetes.Interface
}

// StartEdgeCore writes edgecore's configuration — KubeEdge's defaults with the cloud addresses
// of opts.CloudCore and its join token, the CRI endpoint, cgroupfs, every path in Dir, the MQTT
// event bus, device twin and iptables chains off — starts it and returns once its node is
// Ready. The caller must call Stop.
func StartEdgeCore(ctx context.Context, opts EdgeCoreOptions) (*EdgeCore, error) {
	logger := klog.FromContext(ctx).WithName("edgecore").WithValues("node", opts.NodeName)
	if err := unmountUnder(opts.Dir); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(opts.Dir); err != nil {
		return nil, fmt.Errorf("clearing %s: %w", opts.Dir, err)
	}
	root := filepath.Join(opts.Dir, "edged")
	for _, d := range []string{"ca", "certs", "logs", "edged", "manifests", "pod-logs", "volume-plugins", "dmi"} {
		if err := os.MkdirAll(filepath.Join(opts.Dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	token, err := opts.CloudCore.Token(ctx)
	if err != nil {
		return nil, err
	}
	ports, err := freeport.Loopback(1)
	if err != nil {
		return nil, err
	}
	readOnlyPort := ports[0]
	labels := maps.Clone(opts.Labels)
	if labels == nil {
		labels = map[string]string{}
	}

	doc, err := defaultConfig(ctx, opts.Binaries.EdgeCore)
	if err != nil {
		return nil, err
	}
	var s settings
	s.add("database.dataSource", filepath.Join(opts.Dir, "edgecore.db"))
	const edged = "modules.edged."
	s.add(edged+"hostnameOverride", opts.NodeName)
	s.addOptional(edged+"nodeIP", opts.NodeIP)
	s.add(edged+"rootDirectory", root)
	s.addOptional(edged+"nodeLabels", labels)
	s.add(edged+"podSandboxImage", opts.PodSandboxImage)
	const kc = edged + "tailoredKubeletConfig."
	s.add(kc+"containerRuntimeEndpoint", opts.RuntimeEndpoint)
	s.addOptional(kc+"imageServiceEndpoint", opts.RuntimeEndpoint)
	s.add(kc+"cgroupDriver", "cgroupfs")
	s.add(kc+"readOnlyPort", readOnlyPort)
	s.add(kc+"address", "127.0.0.1")
	s.add(kc+"staticPodPath", filepath.Join(opts.Dir, "manifests"))
	s.add(kc+"podLogsDir", filepath.Join(opts.Dir, "pod-logs"))
	s.add(kc+"volumePluginDir", filepath.Join(opts.Dir, "volume-plugins"))
	// No KUBE-* chains in this machine's iptables.
	s.add(kc+"makeIPTablesUtilChains", false)
	// Another node agent (the cloud node's kubelet) may share this machine's cgroup tree: no
	// kubepods hierarchy of edged's own, no node-allocatable enforcement.
	s.add(kc+"cgroupsPerQOS", false)
	s.add(kc+"enforceNodeAllocatable", []string{})
	// A shared build machine's disk is often above the default eviction thresholds.
	s.add(kc+"evictionHard", map[string]string{"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%"})
	if len(opts.ClusterDNS) > 0 {
		s.addOptional(kc+"clusterDNS", opts.ClusterDNS)
	}
	const hub = "modules.edgeHub."
	s.add(hub+"token", token)
	s.add(hub+"httpServer", "https://"+opts.CloudCore.HTTPSAddr)
	s.add(hub+"websocket.server", opts.CloudCore.WebSocketAddr)
	s.add(hub+"quic.enable", false)
	s.add(hub+"tlsCaFile", filepath.Join(opts.Dir, "ca", "rootCA.crt"))
	s.add(hub+"tlsCertFile", filepath.Join(opts.Dir, "certs", "server.crt"))
	s.add(hub+"tlsPrivateKeyFile", filepath.Join(opts.Dir, "certs", "server.key"))
	// No MQTT broker and no devices here.
	s.add("modules.eventBus.enable", false)
	s.add("modules.deviceTwin.enable", false)
	s.add("modules.deviceTwin.dmiSockPath", filepath.Join(opts.Dir, "dmi"))
	s.add("modules.metaManager.metaServer.enable", false)
	if err := s.apply(doc); err != nil {
		return nil, fmt.Errorf("edgecore configuration: %w", err)
	}
	configPath := filepath.Join(opts.Dir, "edgecore.yaml")
	if err := writeConfig(configPath, doc); err != nil {
		return nil, err
	}
	// edgecore refuses to start while any process named kubelet runs on the machine (one node
	// is either a kubelet's or edgecore's); here the cloud node's kubelet shares the machine as
	// another node, so the check is skipped the way KubeEdge provides (env, exec'd in place).
	envBin, err := exec.LookPath("env")
	if err != nil {
		return nil, err
	}
	proc, err := localcluster.StartProcess(ctx, "edgecore", envBin, filepath.Join(opts.Dir, "logs"),
		[]string{"CHECK_EDGECORE_ENVIRONMENT=false", opts.Binaries.EdgeCore, "--config=" + configPath})
	if err != nil {
		return nil, err
	}
	e := &EdgeCore{NodeName: opts.NodeName, Dir: opts.Dir, RootDir: root, ReadOnlyPort: readOnlyPort, proc: proc, kube: opts.Kube}
	start := time.Now()
	if err := e.waitReady(ctx); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	logger.Info("Edge node is Ready", "after", time.Since(start).Round(time.Millisecond), "log", proc.LogPath())
	return e, nil
}

func (e *EdgeCore) waitReady(ctx context.Context) error {
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, startTimeout, true, func(ctx context.Context) (bool, error) {
		if done, exitErr := e.proc.Exited(); done {
			return false, fmt.Errorf("edgecore exited (%v)", exitErr)
		}
		node, err := e.kube.CoreV1().Nodes().Get(ctx, e.NodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // not registered yet
		}
		return localcluster.NodeReady(node), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for edge node %s to be Ready: %w\n%s", e.NodeName, err, e.proc.LogTail())
	}
	return nil
}

// LogPath is edgecore's log.
func (e *EdgeCore) LogPath() string { return e.proc.LogPath() }

// PodLogDir is where edged writes container logs: <namespace>_<pod>_<uid>/<container>/N.log.
func (e *EdgeCore) PodLogDir() string { return filepath.Join(e.Dir, "pod-logs") }

// Stop stops edgecore and unmounts every volume edged left mounted under its root directory.
// Containers it started keep running in the runtime; the runtime's owner removes them.
func (e *EdgeCore) Stop() error {
	var errs []error
	if err := e.proc.Stop(); err != nil {
		errs = append(errs, fmt.Errorf("stopping edgecore: %w", err))
	}
	if err := unmountUnder(e.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
