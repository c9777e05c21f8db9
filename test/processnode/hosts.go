package processnode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// hostsRefreshInterval is how often a running pod's hosts file is compared with ClusterHosts.
const hostsRefreshInterval = 2 * time.Second

// hostsPath is the pod's hosts file, bind-mounted over /etc/hosts when IsolateHosts is set.
func (p *RunningPod) hostsPath() string {
	return filepath.Join(p.opts.NodeRoot, "pods", string(p.pod.UID), "etc-hosts")
}

// hostsContent is the hosts file the kubelet writes for a pod, followed by the cluster's names.
func hostsContent(pod *corev1.Pod, podIP, clusterHosts string) []byte {
	var b strings.Builder
	b.WriteString("# Kubernetes-managed hosts file (processnode).\n")
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	hostname := pod.Spec.Hostname
	if hostname == "" {
		hostname = pod.Name
	}
	if podIP != "" {
		if pod.Spec.Subdomain != "" {
			fmt.Fprintf(&b, "%s\t%s.%s.%s.svc.cluster.local\t%s\n", podIP, hostname, pod.Spec.Subdomain, pod.Namespace, hostname)
		} else {
			fmt.Fprintf(&b, "%s\t%s\n", podIP, hostname)
		}
	}
	if len(pod.Spec.HostAliases) > 0 {
		b.WriteString("\n# Entries added by HostAliases.\n")
		for _, alias := range pod.Spec.HostAliases {
			fmt.Fprintf(&b, "%s\t%s\n", alias.IP, strings.Join(alias.Hostnames, "\t"))
		}
	}
	if clusterHosts != "" {
		b.WriteString("\n# Cluster services.\n")
		b.WriteString(clusterHosts)
		if !strings.HasSuffix(clusterHosts, "\n") {
			b.WriteByte('\n')
		}
	}
	return []byte(b.String())
}

func (p *RunningPod) clusterHosts() string {
	if p.opts.ClusterHosts == nil {
		return ""
	}
	return p.opts.ClusterHosts()
}

// writeHosts writes the hosts file in place: truncating and writing keeps its inode, which the
// containers' bind mounts point to (a rename would leave them reading the old file).
func writeHosts(path string, content []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("writing the hosts file: %w", err)
	}
	_, err = f.Write(content)
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("writing the hosts file %s: %w", path, err)
	}
	return nil
}

// refreshHosts rewrites the hosts file whenever ClusterHosts changes, until ctx ends.
func (p *RunningPod) refreshHosts(ctx context.Context, written []byte) {
	logger := p.opts.Logger.WithValues("pod", klog.KObj(p.pod))
	ticker := time.NewTicker(hostsRefreshInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		content := hostsContent(p.pod, p.opts.PodIP, p.clusterHosts())
		if string(content) == string(written) {
			continue
		}
		if err := writeHosts(p.hostsPath(), content); err != nil {
			logger.Error(err, "Refreshing the pod's hosts file failed")
			continue
		}
		written = content
		logger.V(4).Info("Refreshed the pod's hosts file")
	}
}
