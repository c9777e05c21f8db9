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
)

func TestRewriteUsesTheLongestMount(t *testing.T) {
	mounts := []corev1.VolumeMount{{Name: "data", MountPath: "/home/data"}, {Name: "models", MountPath: "/home/data/models/"}}
	volumes := map[string]string{"data": "/node/host/data", "models": "/node/host/models"}
	cases := map[string]string{
		"/home/data/train.txt":                      "/node/host/data/train.txt",
		"/home/data/models/m.pb":                    "/node/host/models/m.pb",
		"/home/data":                                "/node/host/data",
		"/home/database":                            "/home/database",
		"s3://bucket/home/data/file":                "s3://bucket/home/data/file",
		"--index=/home/data/i.txt":                  "--index=/node/host/data/i.txt",
		"-v=2":                                      "-v=2",
		"--url=s3://b/home/data":                    "--url=s3://b/home/data",
		"a=/home/data/x":                            "a=/home/data/x",
		"/home/data/a;/home/data/models/b;s3://x/y": "/node/host/data/a;/node/host/models/b;s3://x/y",
	}
	for in, want := range cases {
		require.Equal(t, want, pathMap{mounts: mounts, volumes: volumes}.rewrite(in), in)
	}
}

func shPod(restart corev1.RestartPolicy, script string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "uid-1"},
		Spec: corev1.PodSpec{
			RestartPolicy: restart,
			Volumes: []corev1.Volume{
				{Name: "data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data"}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
			InitContainers: []corev1.Container{{Name: "init", Image: "shell", Args: []string{"-c", "echo ready > $(OUT)/init"},
				Env:          []corev1.EnvVar{{Name: "OUT", Value: "/scratch"}},
				VolumeMounts: []corev1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}}},
			Containers: []corev1.Container{{Name: "main", Image: "shell", Args: []string{"-c", script},
				Env: []corev1.EnvVar{
					{Name: "DATA", Value: "/home/data/train.txt"},
					{Name: "SCRATCH", Value: "/scratch"},
					{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/home/data"}, {Name: "scratch", MountPath: "/scratch"}}}},
		},
	}
}

func runnerOptions(t *testing.T) RunnerOptions {
	root := t.TempDir()
	return RunnerOptions{Images: ImageTable{"shell": "/bin/sh"}, Objects: objects{}, NodeRoot: root,
		LogDir: filepath.Join(root, "logs"), PodIP: "127.0.1.1", HostIP: "127.0.1.1", GracePeriod: time.Second,
		RestartBackoff: 50 * time.Millisecond}
}

func TestPodRunsInitThenMainWithVolumesAndLogs(t *testing.T) {
	opts := runnerOptions(t)
	require.NoError(t, os.MkdirAll(filepath.Join(opts.NodeRoot, "host", "data"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(opts.NodeRoot, "host", "data", "train.txt"), []byte("a\nb\n"), 0o644))
	pod, err := StartPod(shPod(corev1.RestartPolicyNever, `cat "$SCRATCH/init"; wc -l < "$DATA"; echo "ip=$NODE"`), opts)
	require.NoError(t, err)
	<-pod.Done()
	status := pod.Status()
	require.Equal(t, corev1.PodSucceeded, status.Phase, status.Message)
	require.Equal(t, int32(0), status.InitContainerStatuses[0].State.Terminated.ExitCode)
	require.Equal(t, int32(0), status.ContainerStatuses[0].State.Terminated.ExitCode)
	log, err := os.ReadFile(filepath.Join(opts.LogDir, "ns_p_main.log"))
	require.NoError(t, err)
	require.Equal(t, "ready\n2\nip=127.0.1.1\n", string(log), "the init container's file, the hostPath file and the pod IP")
}

func TestRestartPolicies(t *testing.T) {
	cases := map[string]struct {
		policy       corev1.RestartPolicy
		script       string
		wantPhase    corev1.PodPhase
		wantRestarts bool
	}{
		"never, failing":       {policy: corev1.RestartPolicyNever, script: "exit 3", wantPhase: corev1.PodFailed},
		"on failure, succeeds": {policy: corev1.RestartPolicyOnFailure, script: "exit 0", wantPhase: corev1.PodSucceeded},
		"on failure, retried until it succeeds": {policy: corev1.RestartPolicyOnFailure, wantPhase: corev1.PodSucceeded, wantRestarts: true,
			script: `n=$(cat "$SCRATCH/n" 2>/dev/null || echo 0); echo $((n+1)) > "$SCRATCH/n"; [ "$n" -ge 2 ]`},
	}
	for name, tc := range cases {
		forEachHostsMode(t, name, func(t *testing.T, opts RunnerOptions) {
			pod, err := StartPod(shPod(tc.policy, tc.script), opts)
			require.NoError(t, err)
			select {
			case <-pod.Done():
			case <-time.After(30 * time.Second):
				t.Fatal("pod did not finish")
			}
			status := pod.Status()
			require.Equal(t, tc.wantPhase, status.Phase)
			require.Equal(t, tc.wantRestarts, status.ContainerStatuses[0].RestartCount > 0, "restarts: %d", status.ContainerStatuses[0].RestartCount)
		})
	}
}

func TestStopEndsTheProcessAndItsChildren(t *testing.T) {
	forEachHostsMode(t, "stop", testStopEndsTheProcessAndItsChildren)
}

func testStopEndsTheProcessAndItsChildren(t *testing.T, opts RunnerOptions) {
	pod, err := StartPod(shPod(corev1.RestartPolicyAlways, `sleep 300 & echo $! > "$SCRATCH/child"; wait`), opts)
	require.NoError(t, err)
	childFile := filepath.Join(opts.NodeRoot, "pods", "uid-1", "volumes", "scratch", "child")
	require.Eventually(t, func() bool {
		data, err := os.ReadFile(childFile)
		return err == nil && strings.TrimSpace(string(data)) != ""
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, corev1.PodRunning, pod.Status().Phase)
	require.Equal(t, corev1.ConditionTrue, pod.Status().Conditions[0].Status)
	data, err := os.ReadFile(childFile)
	require.NoError(t, err)
	pod.Stop()
	require.Eventually(t, func() bool { return !alive(strings.TrimSpace(string(data))) }, 5*time.Second, 20*time.Millisecond,
		"the container's child process survived Stop")
}

// A container whose main process exits leaves nothing behind, and children that ignore SIGTERM
// do not outlive Stop.
func TestNoProcessOutlivesItsContainer(t *testing.T) {
	forEachHostsMode(t, "exit", func(t *testing.T, opts RunnerOptions) {
		pod, err := StartPod(shPod(corev1.RestartPolicyNever, `sleep 300 & echo $! > "$SCRATCH/child"; exit 1`), opts)
		require.NoError(t, err)
		<-pod.Done()
		data, err := os.ReadFile(filepath.Join(opts.NodeRoot, "pods", "uid-1", "volumes", "scratch", "child"))
		require.NoError(t, err)
		require.Eventually(t, func() bool { return !alive(strings.TrimSpace(string(data))) }, 5*time.Second, 20*time.Millisecond,
			"the child of an exited container is still running")
	})
	forEachHostsMode(t, "stop", func(t *testing.T, opts RunnerOptions) {
		opts.GracePeriod = 500 * time.Millisecond
		pod, err := StartPod(shPod(corev1.RestartPolicyAlways, `sh -c 'trap "" TERM; sleep 300 & echo $! > "$SCRATCH/child"; wait' & wait`), opts)
		require.NoError(t, err)
		childFile := filepath.Join(opts.NodeRoot, "pods", "uid-1", "volumes", "scratch", "child")
		require.Eventually(t, func() bool {
			data, err := os.ReadFile(childFile)
			return err == nil && strings.TrimSpace(string(data)) != ""
		}, 10*time.Second, 20*time.Millisecond)
		data, err := os.ReadFile(childFile)
		require.NoError(t, err)
		pod.Stop()
		<-pod.Done()
		require.Eventually(t, func() bool { return !alive(strings.TrimSpace(string(data))) }, 5*time.Second, 20*time.Millisecond,
			"a child that ignores SIGTERM outlived Stop")
	})
}

// forEachHostsMode runs test as a subtest with plain processes and with processes isolated in
// their own mount namespace (IsolateHosts): the wrapper must keep PIDs, process groups and exit
// codes.
func forEachHostsMode(t *testing.T, name string, test func(t *testing.T, opts RunnerOptions)) {
	t.Helper()
	t.Run(name+", plain", func(t *testing.T) { test(t, runnerOptions(t)) })
	t.Run(name+", isolated hosts", func(t *testing.T) {
		requireUnshare(t)
		opts := runnerOptions(t)
		opts.IsolateHosts = true
		test(t, opts)
	})
}

func TestUnknownImageIsReported(t *testing.T) {
	p := shPod(corev1.RestartPolicyNever, "true")
	p.Spec.InitContainers = nil
	p.Spec.Containers[0].Image = "nginx:1.27"
	pod, err := StartPod(p, runnerOptions(t))
	require.NoError(t, err)
	<-pod.Done()
	status := pod.Status()
	require.Equal(t, corev1.PodFailed, status.Phase)
	require.Equal(t, "ErrImageNeverPull", status.ContainerStatuses[0].State.Waiting.Reason)
	require.Contains(t, status.ContainerStatuses[0].State.Waiting.Message, `image "nginx:1.27" has no local binary`)
}

// alive reports whether a process exists and is not a zombie (an orphan killed with its group may
// wait for a reaper that never comes in some sandboxes).
func alive(pid string) bool {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func TestDataPathPrefixStandsForTheNodesHostRoot(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Volumes: []corev1.Volume{
		{Name: "models", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data/models/"}}},
		{Name: "out", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data/out"}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}}}
	sedna := []corev1.VolumeMount{{Name: "models", MountPath: "/home/data/data/models/"}, {Name: "out", MountPath: "/home/data/data/out"}, {Name: "scratch", MountPath: "/tmp/x"}}
	require.True(t, hostPathsUnder(pod, sedna, "/home/data"))
	require.True(t, hostPathsUnder(pod, sedna, "/home/data/"))
	other := []corev1.VolumeMount{{Name: "models", MountPath: "/home/data/models"}}
	require.False(t, hostPathsUnder(pod, other, "/home/data"), "a hostPath mounted elsewhere under the prefix")
	require.False(t, hostPathsUnder(pod, []corev1.VolumeMount{{Name: "scratch", MountPath: "/home/data/x"}}, "/home/data"), "no hostPath under the prefix")
	require.False(t, hostPathsUnder(pod, sedna, ""))
}
