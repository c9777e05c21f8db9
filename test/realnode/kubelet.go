package realnode

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/test/internal/freeport"
	"github.com/sedna-go/sedna/test/localcluster"
)

// KubeletConfig describes one kubelet.
type KubeletConfig struct {
	// Dir is kubelet's root directory (pods, volumes, its serving certificate) and holds its
	// configuration, kubeconfig, pod logs and logs/kubelet.log. Required.
	Dir string
	// Cluster is the control plane it joins. Required.
	Cluster *localcluster.Cluster
	// Containerd is its container runtime; the node is named after it and its bridge address is
	// the node's IP. Required.
	Containerd *Containerd
	// Labels are set on the Node once it has registered (as KubeEdge sets
	// node-role.kubernetes.io/edge; a kubelet may not set labels under kubernetes.io itself).
	Labels map[string]string
	// ClusterDNS is the pods' name server; default the node's IP (where ServeDNS listens).
	ClusterDNS net.IP
	// Binary is the kubelet executable; default <repo>/_output/bin/kubelet.
	Binary string
}

// Kubelet is a running kubelet.
type Kubelet struct {
	cfg        KubeletConfig
	proc       *localcluster.Process
	cgroupRoot string
}

// nodeRoleBinding lets every kubelet (group system:nodes) do what a node does, as kubeadm's
// clusters allow; the local control plane authorizes by RBAC only (no Node authorizer).
const nodeRoleBinding = "sedna-realnode:nodes"

// StartKubelet starts a kubelet for cfg.Containerd's node and returns once the Node is Ready and
// labelled. The caller must call Stop, also when StartKubelet fails.
func StartKubelet(ctx context.Context, cfg KubeletConfig) (*Kubelet, error) {
	if cfg.Dir == "" || cfg.Cluster == nil || cfg.Containerd == nil {
		return nil, errors.New("realnode: KubeletConfig.Dir, Cluster and Containerd are required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = dir
	if cfg.Binary == "" {
		cfg.Binary = filepath.Join(localcluster.RepoRoot(), "_output", "bin", "kubelet")
	}
	if _, err := os.Stat(cfg.Binary); err != nil {
		return nil, fmt.Errorf("kubelet missing (run hack/install-node-binaries.sh): %w", err)
	}
	if cfg.ClusterDNS == nil {
		cfg.ClusterDNS = cfg.Containerd.Gateway()
	}
	name := cfg.Containerd.Name()
	k := &Kubelet{cfg: cfg, cgroupRoot: cgroupRootFor(dir, name)}
	for _, d := range []string{filepath.Join(dir, "root"), filepath.Join(dir, "pod-logs"), filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return k, err
		}
	}
	client, err := kubernetes.NewForConfig(cfg.Cluster.Config)
	if err != nil {
		return k, err
	}
	if err := ensureNodeRoleBinding(ctx, client); err != nil {
		return k, err
	}
	kubeconfig, err := writeKubeconfig(cfg.Cluster, filepath.Join(dir, "kubeconfig"), "system:node:"+name, []string{"system:nodes"})
	if err != nil {
		return k, err
	}
	// Its own cgroup root: two kubelets under one /kubepods would remove each other's pods'
	// cgroups as orphans.
	if err := createCgroup(k.cgroupRoot); err != nil {
		return k, err
	}
	ports, err := freeport.On("", 2)
	if err != nil {
		return k, err
	}
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: %[2]d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[3]d
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[4]q}
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
cgroupRoot: %[5]s
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: %[6]q
clusterDNS: [%[7]s]
clusterDomain: cluster.local
podLogsDirectory: %[8]q
# Nothing can be pulled again: never collect images, and evict only when the disk is really full.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", nodefs.inodesFree: "1%%", imagefs.available: "1%%"}
serializeImagePulls: false
nodeStatusReportFrequency: 10s
syncFrequency: 10s
`, cfg.Containerd.Gateway(), ports[0], ports[1], cfg.Cluster.CACertFile(), k.cgroupRoot, cfg.Containerd.Endpoint(),
		cfg.ClusterDNS, filepath.Join(dir, "pod-logs"))
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(config), 0o600); err != nil {
		return k, err
	}
	k.proc, err = localcluster.StartProcess(ctx, "kubelet", cfg.Binary, filepath.Join(dir, "logs"), []string{
		"--config=" + filepath.Join(dir, "config.yaml"),
		"--kubeconfig=" + kubeconfig,
		"--root-dir=" + filepath.Join(dir, "root"),
		"--hostname-override=" + name,
		"--node-ip=" + cfg.Containerd.Gateway().String(),
		"-v=1",
	})
	if err != nil {
		return k, err
	}
	if err := k.waitReady(ctx, client); err != nil {
		return k, err
	}
	klog.FromContext(ctx).Info("kubelet is up", "node", name, "ip", cfg.Containerd.Gateway(), "labels", cfg.Labels)
	return k, nil
}

// LogPath is kubelet's log.
func (k *Kubelet) LogPath() string { return filepath.Join(k.cfg.Dir, "logs", "kubelet.log") }

func (k *Kubelet) waitReady(ctx context.Context, client kubernetes.Interface) error {
	name := k.cfg.Containerd.Name()
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		if done, err := k.proc.Exited(); done {
			return false, fmt.Errorf("kubelet exited: %v", err)
		}
		node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		if len(k.cfg.Labels) > 0 {
			missing := false
			for key, v := range k.cfg.Labels {
				if have, ok := node.Labels[key]; !ok || have != v {
					missing = true
				}
			}
			if missing {
				for key, v := range k.cfg.Labels {
					node.Labels[key] = v
				}
				if _, err := client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
					last = err.Error()
				}
				return false, nil
			}
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				last = fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for node %s to be Ready (last: %s): %w\n--- tail of %s ---\n%s", name, last, err, k.LogPath(), k.proc.LogTail())
	}
	return nil
}

// Stop stops kubelet and removes its pods' cgroups and volume mounts. The pods' containers and
// sandboxes are the runtime's: Containerd.Stop removes them. Safe to call more than once.
func (k *Kubelet) Stop() error {
	var errs []error
	if k.proc != nil {
		if err := k.proc.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cgroupRootFor is the cgroup root of the kubelet in dir for node: its own per run directory,
// as two runs on one machine (two tiers, two checkouts) may name their nodes alike, and a sweep
// of one must not kill the other's pods.
func cgroupRootFor(dir, node string) string {
	sum := sha256.Sum256([]byte(dir))
	return fmt.Sprintf("/sedna-realnode-%s-%x", node, sum[:4])
}

// Sweep removes what the kubelet left on the host once its runtime is stopped too: the cgroups
// under its cgroup root and the mounts under its directory (secret and projected volumes).
func (k *Kubelet) Sweep() error {
	return errors.Join(removeCgroup(k.cgroupRoot), unmountUnder(k.cfg.Dir))
}

func ensureNodeRoleBinding(ctx context.Context, client kubernetes.Interface) error {
	_, err := client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: nodeRoleBinding},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:node"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "system:nodes"}},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("binding system:node to the kubelets: %w", err)
	}
	return nil
}

// writeKubeconfig writes a kubeconfig for a client certificate the cluster CA issues to user in
// groups.
func writeKubeconfig(cluster *localcluster.Cluster, path, user string, groups []string) (string, error) {
	certPEM, keyPEM, err := cluster.IssueCertificate(user, groups, nil, nil)
	if err != nil {
		return "", err
	}
	const name = "local"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: cluster.Config.Host, CertificateAuthority: cluster.CACertFile()}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil
}
