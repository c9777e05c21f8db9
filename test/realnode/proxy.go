package realnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sedna-go/sedna/test/internal/freeport"
	"github.com/sedna-go/sedna/test/localcluster"
)

// KubeProxyConfig describes the one kube-proxy of the machine: all nodes share this machine's
// network stack (their pods differ only by bridge), so one kube-proxy serves every node's
// Services, as one per node would write the same rules twice.
type KubeProxyConfig struct {
	// Dir holds its configuration, kubeconfig and logs/kube-proxy.log. Required.
	Dir string
	// Cluster is the control plane. Required.
	Cluster *localcluster.Cluster
	// NodeName is the node it reports as. Required.
	NodeName string
	// ClusterCIDR covers every node's pod subnet (traffic from outside it is masqueraded). Required.
	ClusterCIDR string
	// Binary is the kube-proxy executable; default <repo>/_output/bin/kube-proxy.
	Binary string
}

// KubeProxy is a running kube-proxy (iptables mode).
type KubeProxy struct {
	proc *localcluster.Process
}

// StartKubeProxy starts kube-proxy with the identity system:kube-proxy (bound to
// system:node-proxier by the API server's bootstrap policy).
func StartKubeProxy(ctx context.Context, cfg KubeProxyConfig) (*KubeProxy, error) {
	if cfg.Dir == "" || cfg.Cluster == nil || cfg.NodeName == "" || cfg.ClusterCIDR == "" {
		return nil, errors.New("realnode: KubeProxyConfig.Dir, Cluster, NodeName and ClusterCIDR are required")
	}
	if cfg.Binary == "" {
		cfg.Binary = filepath.Join(localcluster.RepoRoot(), "_output", "bin", "kube-proxy")
	}
	if _, err := os.Stat(cfg.Binary); err != nil {
		return nil, fmt.Errorf("kube-proxy missing (run hack/install-node-binaries.sh): %w", err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "logs"), 0o700); err != nil {
		return nil, err
	}
	kubeconfig, err := writeKubeconfig(cfg.Cluster, filepath.Join(cfg.Dir, "kubeconfig"), "system:kube-proxy", nil)
	if err != nil {
		return nil, err
	}
	ports, err := freeport.On("", 2)
	if err != nil {
		return nil, err
	}
	// conntrack all zero: leave the host's conntrack sysctls alone. NodePorts only on the nodes'
	// bridge addresses (inside the cluster CIDR), never on this machine's other addresses.
	config := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %q}
hostnameOverride: %s
mode: iptables
clusterCIDR: %s
nodePortAddresses: [%s]
healthzBindAddress: 127.0.0.1:%d
metricsBindAddress: 127.0.0.1:%d
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
`, kubeconfig, cfg.NodeName, cfg.ClusterCIDR, cfg.ClusterCIDR, ports[0], ports[1])
	if err := os.WriteFile(filepath.Join(cfg.Dir, "config.yaml"), []byte(config), 0o600); err != nil {
		return nil, err
	}
	proc, err := localcluster.StartProcess(ctx, "kube-proxy", cfg.Binary, filepath.Join(cfg.Dir, "logs"),
		[]string{"--config=" + filepath.Join(cfg.Dir, "config.yaml"), "-v=1"})
	if err != nil {
		return nil, err
	}
	return &KubeProxy{proc: proc}, nil
}

// LogTail is the end of kube-proxy's log.
func (p *KubeProxy) LogTail() string { return p.proc.LogTail() }

// Stop stops kube-proxy. Its iptables chains stay (kube-proxy leaves them on exit); the Cluster
// removes them with Host.RemoveIPTables.
func (p *KubeProxy) Stop() error {
	if p == nil || p.proc == nil {
		return nil
	}
	return p.proc.Stop()
}
