package processnode

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if !canDropPrivileges() {
		t.Skip("the harness is not root: it cannot drop privileges, every container runs as the harness's user and files keep their owner")
	}
}

func identityPod(script string, psc *corev1.PodSecurityContext, csc *corev1.SecurityContext, volumes []corev1.Volume, mounts []corev1.VolumeMount) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "who", Namespace: "ns", UID: "uid-id"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever, SecurityContext: psc, Volumes: volumes,
			Containers: []corev1.Container{{Name: "main", Image: "shell", Args: []string{"-c", script},
				SecurityContext: csc, VolumeMounts: mounts,
				Env: []corev1.EnvVar{{Name: "OUT", Value: "/out"}, {Name: "SCRATCH", Value: "/scratch"}}}},
		},
	}
}

// TestContainersRunAsTheirUser: a container runs as its securityContext's user and group (the
// container's over the pod's), with fsGroup and supplementalGroups as supplementary groups, or as
// the image's 65532:65532; a root container keeps only the capabilities it is given, and
// allowPrivilegeEscalation false sets no_new_privs. Isolated (setpriv after the mounts) and plain
// (setpriv alone).
func TestContainersRunAsTheirUser(t *testing.T) {
	requireRoot(t)
	requireUnshare(t)
	const script = `echo "$(id -u) $(id -g) $(id -G)"; grep -E '^Cap(Eff|Bnd):' /proc/self/status | tr '\t' ' '; grep NoNewPrivs /proc/self/status | tr '\t' ' '`
	cases := map[string]struct {
		psc  *corev1.PodSecurityContext
		csc  *corev1.SecurityContext
		want string
	}{
		"the image's user": {want: "65532 65532 65532\nCapEff: 0000000000000000\n"},
		"runAsUser only":   {psc: &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(1000))}, want: "1000 0 0\nCapEff: 0000000000000000\n"},
		"container over pod, fsGroup and supplementalGroups": {
			psc: &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(1000)), RunAsGroup: ptr.To(int64(1000)),
				FSGroup: ptr.To(int64(2000)), SupplementalGroups: []int64{3000}},
			csc:  &corev1.SecurityContext{RunAsUser: ptr.To(int64(1001)), AllowPrivilegeEscalation: ptr.To(false)},
			want: "1001 1000 1000 2000 3000\nCapEff: 0000000000000000\nNoNewPrivs: 1\n",
		},
		// build/lc: root with every capability dropped but DAC_OVERRIDE (bit 1).
		"root with one capability": {
			csc: &corev1.SecurityContext{RunAsUser: ptr.To(int64(0)), RunAsGroup: ptr.To(int64(0)),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"DAC_OVERRIDE"}}},
			want: "0 0 0\nCapEff: 0000000000000002\nCapBnd: 0000000000000002\n",
		},
	}
	for name, tc := range cases {
		for _, isolated := range []bool{true, false} {
			t.Run(name+map[bool]string{true: " isolated", false: " plain"}[isolated], func(t *testing.T) {
				opts := runnerOptions(t)
				opts.IsolateHosts = isolated
				log := runToEnd(t, identityPod(script, tc.psc, tc.csc, nil, nil), opts)
				lines := strings.Split(strings.TrimSpace(log), "\n")
				for _, want := range strings.Split(strings.TrimSpace(tc.want), "\n") {
					require.Contains(t, lines, want, "log:\n%s", log)
				}
			})
		}
	}
}

// TestVolumeOwnershipAsAKubelet: a missing hostPath is created root:root 0755, so the image's
// user cannot write it (as on a real node) while root can; an emptyDir is world-writable, and
// with fsGroup it is the group's with setgid, so files written there are the group's.
func TestVolumeOwnershipAsAKubelet(t *testing.T) {
	requireRoot(t)
	requireUnshare(t)
	volumes := []corev1.Volume{
		{Name: "out", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data/out", Type: ptr.To(corev1.HostPathDirectoryOrCreate)}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	mounts := []corev1.VolumeMount{{Name: "out", MountPath: "/out"}, {Name: "scratch", MountPath: "/scratch"}}
	const script = `if ( echo x > "$OUT/f" ) 2>/dev/null; then echo "out: ok"; else echo "out: refused"; fi
		echo y > "$SCRATCH/f" && echo "scratch: ok"`
	for name, tc := range map[string]struct {
		psc  *corev1.PodSecurityContext
		want string
		gid  uint32
	}{
		"image user":              {want: "out: refused\nscratch: ok\n", gid: uint32(imageGroup)},
		"image user with fsGroup": {psc: &corev1.PodSecurityContext{FSGroup: ptr.To(int64(4000))}, want: "out: refused\nscratch: ok\n", gid: 4000},
		"root":                    {psc: &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(0))}, want: "out: ok\nscratch: ok\n", gid: 0},
	} {
		t.Run(name, func(t *testing.T) {
			opts := runnerOptions(t)
			opts.IsolateHosts = true
			require.Equal(t, tc.want, runToEnd(t, identityPod(script, tc.psc, nil, volumes, mounts), opts))
			info, err := os.Stat(filepath.Join(opts.NodeRoot, "host", "data", "out"))
			require.NoError(t, err)
			st := info.Sys().(*syscall.Stat_t)
			require.Equal(t, [3]uint32{0, 0, 0o755}, [3]uint32{st.Uid, st.Gid, uint32(info.Mode().Perm())}, "hostPath DirectoryOrCreate: root:root 0755")
			scratch := filepath.Join(opts.NodeRoot, "pods", "uid-id", "volumes", "scratch")
			info, err = os.Stat(scratch)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o777), info.Mode().Perm())
			require.Equal(t, tc.psc != nil && tc.psc.FSGroup != nil, info.Mode()&os.ModeSetgid != 0, "setgid with fsGroup")
			f, err := os.Stat(filepath.Join(scratch, "f"))
			require.NoError(t, err)
			require.Equal(t, tc.gid, f.Sys().(*syscall.Stat_t).Gid, "the file's group")
		})
	}
}

// TestAWorkerRunAsItsUserDiesWithItsHarness: a harness that dies without stopping its pods
// takes their processes with it, also those that became another user (the kernel clears the
// parent-death signal on that change). The harness is this test binary run again.
func TestAWorkerRunAsItsUserDiesWithItsHarness(t *testing.T) {
	if os.Getenv("PROCESSNODE_TEST_HARNESS") == "1" {
		argv, err := identity{uid: 65532, gid: 65532}.wrap([]string{"sleep", "300"})
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.SysProcAttr = containerProcAttr()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		fmt.Println("worker", cmd.Process.Pid)
		os.Exit(0) // dies without stopping it
	}
	requireRoot(t)
	harness := exec.Command(os.Args[0], "-test.run=^TestAWorkerRunAsItsUserDiesWithItsHarness$")
	harness.Env = append(os.Environ(), "PROCESSNODE_TEST_HARNESS=1")
	out, err := harness.Output()
	require.NoError(t, err, "%s", out)
	var pid int
	_, err = fmt.Sscanf(strings.TrimSpace(string(out)), "worker %d", &pid)
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	require.Eventually(t, func() bool {
		// Gone, or a zombie nobody reaps yet.
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		return err != nil || strings.Contains(string(status), "State:\tZ")
	}, 10*time.Second, 50*time.Millisecond, "the worker (pid %d) outlived its harness", pid)
}
