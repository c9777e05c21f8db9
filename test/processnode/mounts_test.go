package processnode

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// An isolated container's paths in the top-level directories of its mount paths are moved into its
// root, where only its mounts are; nothing else is touched.
func TestRewriteIntoTheContainerRoot(t *testing.T) {
	paths := pathMap{root: "/c", volumes: map[string]string{"data": "/node/host/data", "token": "/node/pods/u/volumes/token"},
		mounts: []corev1.VolumeMount{
			{Name: "data", MountPath: "/rootfs/data/"}, {Name: "token", MountPath: "/var/run/secrets/sedna"},
			{Name: "in", MountPath: "/home/data/data/in"}, // a volume this harness does not run: still not the host's
		}}
	cases := map[string]string{
		"/rootfs":                     "/c/rootfs",
		"/rootfs/":                    "/c/rootfs/",
		"/rootfs/data/train.txt":      "/c/rootfs/data/train.txt",
		"/rootfs/etc/passwd":          "/c/rootfs/etc/passwd", // in the root, where nothing is mounted
		"/var/lib/kubelet":            "/c/var/lib/kubelet",   // next to a mount: not the host's
		"/home/data":                  "/c/home/data",
		"/home/data/data/in/a":        "/c/home/data/data/in/a",
		"/":                           "/", // the machine's: binaries and libraries are found through it
		"/usr/bin/env":                "/usr/bin/env",
		"/tmp/x":                      "/tmp/x",
		"/data":                       "/data", // a host path the LC resolves under /rootfs, not a mount
		"/home/database":              "/c/home/database",
		"/homework":                   "/homework",
		"/home/data/../../etc/shadow": "/home/data/../../etc/shadow", // names /etc/shadow: not a mount
		"--token-file=/var/run/secrets/sedna/tok":  "--token-file=/c/var/run/secrets/sedna/tok",
		"--allowed-data-roots=/data":               "--allowed-data-roots=/data",
		"/rootfs/data/a;s3://b/rootfs/data;/tmp/x": "/c/rootfs/data/a;s3://b/rootfs/data;/tmp/x",
		"relative/rootfs/data":                     "relative/rootfs/data",
		"-v=2":                                     "-v=2",
	}
	for in, want := range cases {
		require.Equal(t, want, paths.rewrite(in), in)
	}
}

// mountsPod mounts two host directories under DATA_PATH_PREFIX the way GM does for a worker (one
// read-only), and an emptyDir twice: whole and writable, and a subPath of it read-only.
func mountsPod(script string) *corev1.Pod {
	hostPath := func(path string) corev1.VolumeSource {
		return corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path}}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: "ns", UID: "uid-m"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Volumes: []corev1.Volume{
				{Name: "in", VolumeSource: hostPath("/data/in")},
				{Name: "out", VolumeSource: hostPath("/data/out")},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
			Containers: []corev1.Container{{Name: "main", Image: "shell", Args: []string{"-c", script},
				Env: []corev1.EnvVar{
					{Name: "DATA_PATH_PREFIX", Value: "/home/data"},
					{Name: "IN", Value: "/home/data/data/in"},
					{Name: "OUT", Value: "/home/data/data/out"},
					{Name: "SCRATCH", Value: "/scratch"},
					{Name: "RO", Value: "/ro"},
				},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "in", MountPath: "/home/data/data/in", ReadOnly: true},
					{Name: "out", MountPath: "/home/data/data/out"},
					{Name: "scratch", MountPath: "/scratch"},
					{Name: "scratch", MountPath: "/ro", SubPath: "sub", ReadOnly: true},
				}}},
		},
	}
}

// runToEnd runs pod and returns its container's log.
func runToEnd(t *testing.T, pod *corev1.Pod, opts RunnerOptions) string {
	t.Helper()
	running, err := StartPod(pod, opts)
	require.NoError(t, err)
	t.Cleanup(running.Stop)
	select {
	case <-running.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the pod did not finish")
	}
	status := running.Status()
	log, err := os.ReadFile(filepath.Join(opts.LogDir, pod.Namespace+"_"+pod.Name+"_main.log"))
	require.NoError(t, err)
	require.Equal(t, corev1.PodSucceeded, status.Phase, "log:\n%s", log)
	return string(log)
}

// TestIsolatedContainersGetOnlyTheirMounts: a write to a readOnly mount (a whole volume or a
// subPath) fails with EROFS and leaves the volume unchanged, a write to a read-write mount lands in
// the volume, and a host directory the pod did not mount is not reachable through the paths the
// container is told, even next to one it did mount. None of it shows in the machine's mounts.
func TestIsolatedContainersGetOnlyTheirMounts(t *testing.T) {
	requireUnshare(t)
	opts := runnerOptions(t)
	opts.IsolateHosts = true
	host := filepath.Join(opts.NodeRoot, "host")
	require.NoError(t, os.MkdirAll(filepath.Join(host, "data", "in"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(host, "data", "in", "a.txt"), []byte("input\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(host, "data", "other"), 0o755))
	// The container runs as the image's user: the directory it writes is made writable for it
	// beforehand, as docs/install.md tells for real nodes (a missing one would be root's, 0755).
	require.NoError(t, os.MkdirAll(filepath.Join(host, "data", "out"), 0o755))
	if canDropPrivileges() {
		require.NoError(t, os.Chown(filepath.Join(host, "data", "out"), int(imageUser), int(imageGroup)))
	}
	require.NoError(t, os.WriteFile(filepath.Join(host, "data", "other", "secret.txt"), []byte("secret\n"), 0o644))
	machineMounts, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)

	log := runToEnd(t, mountsPod(`
		try() { name=$1; shift; if ( "$@" ) 2>>"$SCRATCH/errors"; then echo "$name: ok"; else echo "$name: refused"; fi; }
		try "read in" cat "$IN/a.txt"
		try "write in" sh -c 'echo x > "$IN/new"'
		try "write out" sh -c 'echo y > "$OUT/new"'
		try "write scratch" sh -c 'echo z > "$SCRATCH/new"'
		try "write ro subPath" sh -c 'echo w > "$RO/new"'
		try "read other" cat "$DATA_PATH_PREFIX/data/other/secret.txt"
		try "list prefix" ls "$DATA_PATH_PREFIX/data"
	`), opts)
	require.Equal(t, "input\nread in: ok\nwrite in: refused\nwrite out: ok\nwrite scratch: ok\nwrite ro subPath: refused\n"+
		"read other: refused\nin\nout\nlist prefix: ok\n", log)

	scratch := filepath.Join(opts.NodeRoot, "pods", "uid-m", "volumes", "scratch")
	errs, err := os.ReadFile(filepath.Join(scratch, "errors"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(errs)), "\n")
	require.Len(t, lines, 3, "%s", errs)
	require.Contains(t, lines[0], "/in/new: Read-only file system", "EROFS on the readOnly volume")
	require.Contains(t, lines[1], "/ro/new: Read-only file system", "EROFS on the readOnly subPath")
	require.Contains(t, lines[2], "secret.txt: No such file or directory")

	require.NoFileExists(t, filepath.Join(host, "data", "in", "new"))
	require.NoFileExists(t, filepath.Join(scratch, "sub", "new"))
	out, err := os.ReadFile(filepath.Join(host, "data", "out", "new"))
	require.NoError(t, err)
	require.Equal(t, "y\n", string(out))
	after, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	require.Equal(t, string(machineMounts), string(after), "the container's mounts stay in its namespace")
}

// TestReadOnlyRootFilesystem: with securityContext.readOnlyRootFilesystem the container's root
// (the directories above its mounts and its working directory) refuses writes while its mounts
// take them; without it, writes there land in the container's own root, not in a volume.
func TestReadOnlyRootFilesystem(t *testing.T) {
	requireUnshare(t)
	script := `
		try() { name=$1; shift; if ( "$@" ) 2>/dev/null; then echo "$name: ok"; else echo "$name: refused"; fi; }
		try "write root" sh -c 'echo a > "$ROOT/file"'
		try "write cwd" sh -c 'echo b > relative'
		try "write mount" sh -c 'echo c > "$ROOT/out/file"'
		try "write tmp" sh -c 'case "$TMPDIR" in ""|/tmp|/tmp/) exit 1;; esac; echo d > "$TMPDIR/file"'`
	for name, tc := range map[string]struct {
		readOnly *bool
		want     string
	}{
		"read-only root": {readOnly: ptr.To(true), want: "write root: refused\nwrite cwd: refused\nwrite mount: ok\nwrite tmp: refused\n"},
		"writable root":  {readOnly: ptr.To(false), want: "write root: ok\nwrite cwd: ok\nwrite mount: ok\nwrite tmp: ok\n"},
		"unset":          {want: "write root: ok\nwrite cwd: ok\nwrite mount: ok\nwrite tmp: ok\n"},
	} {
		t.Run(name, func(t *testing.T) {
			opts := runnerOptions(t)
			opts.IsolateHosts = true
			pod := shPod(corev1.RestartPolicyNever, script)
			pod.Spec.InitContainers = nil
			c := &pod.Spec.Containers[0]
			c.Env = []corev1.EnvVar{{Name: "ROOT", Value: "/processnode-test-work"}}
			c.VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/processnode-test-work/out"}}
			c.WorkingDir = "/processnode-test-work"
			// Root: the container's own root directory is root's, as an image's directories are.
			c.SecurityContext = &corev1.SecurityContext{ReadOnlyRootFilesystem: tc.readOnly, RunAsUser: ptr.To(int64(0))}
			require.Equal(t, tc.want, runToEnd(t, pod, opts))
			written, err := os.ReadFile(filepath.Join(opts.NodeRoot, "pods", "uid-1", "volumes", "scratch", "file"))
			require.NoError(t, err)
			require.Equal(t, "c\n", string(written))
			if ptr.Deref(tc.readOnly, false) {
				return
			}
			tmp, err := os.ReadFile(filepath.Join(opts.NodeRoot, "pods", "uid-1", "roots", "main", "tmp", "file"))
			require.NoError(t, err)
			require.Equal(t, "d\n", string(tmp), "the container's TMPDIR is /tmp in its own root")
			for file, content := range map[string]string{"file": "a\n", "relative": "b\n"} {
				data, err := os.ReadFile(filepath.Join(opts.NodeRoot, "pods", "uid-1", "roots", "main", "processnode-test-work", file))
				require.NoError(t, err)
				require.Equal(t, content, string(data))
			}
		})
	}
}
