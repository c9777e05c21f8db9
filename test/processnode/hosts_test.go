package processnode

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// requireUnshare skips where util-linux's unshare and mount are missing; everywhere else the
// isolation must work.
func requireUnshare(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"unshare", "mount", "getent"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
}

func TestHostsContent(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "gm-abc", Namespace: "sedna"},
		Spec: corev1.PodSpec{HostAliases: []corev1.HostAlias{
			{IP: "10.0.0.1", Hostnames: []string{"foo.local", "bar.local"}},
		}},
	}
	cases := map[string]struct {
		hostname, subdomain, cluster string
		want                         string
	}{
		"pod name as hostname, cluster lines get a newline": {
			cluster: "127.0.100.10 gm.sedna gm.sedna.svc",
			want: "# Kubernetes-managed hosts file (processnode).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
				"127.0.1.1\tgm-abc\n\n# Entries added by HostAliases.\n10.0.0.1\tfoo.local\tbar.local\n" +
				"\n# Cluster services.\n127.0.100.10 gm.sedna gm.sedna.svc\n",
		},
		"hostname and subdomain": {
			hostname: "gm", subdomain: "headless",
			want: "# Kubernetes-managed hosts file (processnode).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
				"127.0.1.1\tgm.headless.sedna.svc.cluster.local\tgm\n\n# Entries added by HostAliases.\n10.0.0.1\tfoo.local\tbar.local\n",
		},
	}
	for name, tc := range cases {
		p := pod.DeepCopy()
		p.Spec.Hostname, p.Spec.Subdomain = tc.hostname, tc.subdomain
		require.Equal(t, tc.want, string(hostsContent(p, "127.0.1.1", tc.cluster)), name)
	}
}

// clusterHosts is a ClusterHosts whose answer a test changes.
type clusterHosts struct {
	mu    sync.Mutex
	lines string
}

func (c *clusterHosts) get() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lines
}

func (c *clusterHosts) set(lines string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = lines
}

// TestIsolatedContainersResolveClusterNames runs a container that resolves a service name through
// its pod's hosts file, sees a changed address once the file is refreshed, and exits with its own
// code, while the machine's /etc/hosts stays as it was.
func TestIsolatedContainersResolveClusterNames(t *testing.T) {
	requireUnshare(t)
	machineHosts, err := os.ReadFile("/etc/hosts")
	require.NoError(t, err)
	machineMounts := hostsMounts(t)
	cluster := &clusterHosts{lines: "127.0.100.10 myservice.myns myservice.myns.svc.cluster.local\n"}
	opts := runnerOptions(t)
	opts.IsolateHosts, opts.ClusterHosts = true, cluster.get
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client", Namespace: "myns", UID: "uid-h"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			// Root: it marks its start in the node's directory, which is not a volume.
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(0))},
			Hostname:        "worker-0",
			HostAliases:     []corev1.HostAlias{{IP: "10.0.0.1", Hostnames: []string{"alias.local"}}},
			Containers: []corev1.Container{{Name: "main", Image: "shell", Command: []string{"/bin/sh", "-c"}, Args: []string{
				`getent hosts myservice.myns; getent hosts worker-0; getent hosts alias.local; echo started > "$MARK"
				while ! getent hosts myservice.myns | grep -q 127.0.100.11; do sleep 0.1; done
				getent hosts myservice.myns; exit 4`},
				Env: []corev1.EnvVar{{Name: "MARK", Value: filepath.Join(opts.NodeRoot, "started")}},
			}},
		},
	}
	running, err := StartPod(pod, opts)
	require.NoError(t, err)
	t.Cleanup(running.Stop)
	hostsPath := filepath.Join(opts.NodeRoot, "pods", "uid-h", "etc-hosts")
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(opts.NodeRoot, "started"))
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "the container should start")
	before, err := os.Stat(hostsPath)
	require.NoError(t, err)
	current, err := os.ReadFile("/etc/hosts")
	require.NoError(t, err)
	require.Equal(t, string(machineHosts), string(current), "the machine's /etc/hosts must not change while the container runs")
	require.Equal(t, machineMounts, hostsMounts(t), "the bind mount must stay in the container's mount namespace")

	cluster.set("127.0.100.11 myservice.myns\n")
	select {
	case <-running.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the container did not see the refreshed hosts file")
	}
	status := running.Status()
	require.Equal(t, corev1.PodFailed, status.Phase)
	require.Equal(t, int32(4), status.ContainerStatuses[0].State.Terminated.ExitCode, "the container's exit code passes through the wrapper")
	log, err := os.ReadFile(filepath.Join(opts.LogDir, "myns_client_main.log"))
	require.NoError(t, err)
	require.Regexp(t, `^127\.0\.100\.10\s+myservice\.myns myservice\.myns\.svc\.cluster\.local\n`+
		`127\.0\.1\.1\s+worker-0\n10\.0\.0\.1\s+alias\.local\n127\.0\.100\.11\s+myservice\.myns\n$`, string(log))

	after, err := os.Stat(hostsPath)
	require.NoError(t, err)
	require.Equal(t, before.Sys().(*syscall.Stat_t).Ino, after.Sys().(*syscall.Stat_t).Ino,
		"the hosts file is rewritten in place, keeping the inode the bind mount points to")
	current, err = os.ReadFile("/etc/hosts")
	require.NoError(t, err)
	require.Equal(t, string(machineHosts), string(current), "the machine's /etc/hosts must be unchanged")
}

// hostsMounts returns this process's mounts on /etc/hosts.
func hostsMounts(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		if fields := strings.Fields(line); len(fields) > 4 && fields[4] == "/etc/hosts" {
			mounts = append(mounts, line)
		}
	}
	return mounts
}

// TestPlainContainersKeepTheMachinesHosts: without IsolateHosts the pod's hosts file is written
// but containers see the machine's /etc/hosts, as before.
func TestPlainContainersKeepTheMachinesHosts(t *testing.T) {
	requireUnshare(t)
	opts := runnerOptions(t)
	opts.ClusterHosts = func() string { return "127.0.100.10 myservice.myns\n" }
	pod := shPod(corev1.RestartPolicyNever, "getent hosts myservice.myns || echo unresolved")
	pod.Spec.InitContainers = nil
	running, err := StartPod(pod, opts)
	require.NoError(t, err)
	<-running.Done()
	require.Equal(t, corev1.PodSucceeded, running.Status().Phase)
	log, err := os.ReadFile(filepath.Join(opts.LogDir, "ns_p_main.log"))
	require.NoError(t, err)
	require.Equal(t, "unresolved\n", string(log))
	hosts, err := os.ReadFile(filepath.Join(opts.NodeRoot, "pods", "uid-1", "etc-hosts"))
	require.NoError(t, err)
	require.Contains(t, string(hosts), "127.0.100.10 myservice.myns\n")
}
