package processnode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

type tokenRequest struct {
	pod, audience     string
	expirationSeconds int64
}

// fakeTokens issues numbered tokens valid for lifetime.
type fakeTokens struct {
	lifetime time.Duration

	mu       sync.Mutex
	requests []tokenRequest
}

func (f *fakeTokens) CreateToken(_ context.Context, pod *corev1.Pod, audience string, expirationSeconds int64) (string, time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, tokenRequest{pod: pod.Namespace + "/" + pod.Name, audience: audience, expirationSeconds: expirationSeconds})
	return fmt.Sprintf("token-%d", len(f.requests)), time.Now().Add(f.lifetime), nil
}

func (f *fakeTokens) issued() []tokenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]tokenRequest(nil), f.requests...)
}

// lockedObjects lets a test create objects while a pod's setup is reading them.
type lockedObjects struct {
	mu      sync.Mutex
	objects objects
}

func (l *lockedObjects) Secret(namespace, name string) (*corev1.Secret, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.objects.Secret(namespace, name)
}

func (l *lockedObjects) ConfigMap(namespace, name string) (*corev1.ConfigMap, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.objects.ConfigMap(namespace, name)
}

func (l *lockedObjects) addConfigMap(name string, cm *corev1.ConfigMap) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.objects.configMaps[name] = cm
}

func TestRewriteMapsSubPaths(t *testing.T) {
	mounts := []corev1.VolumeMount{
		{Name: "config", MountPath: "/etc/sedna/gm.yaml", SubPath: "gm.yaml"},
		{Name: "data", MountPath: "/data", SubPath: "pod-a/in"},
	}
	volumes := map[string]string{"config": "/node/pods/u/volumes/config", "data": "/node/host/data"}
	cases := map[string]string{
		"/etc/sedna/gm.yaml":   "/node/pods/u/volumes/config/gm.yaml",
		"/etc/sedna/other":     "/etc/sedna/other",
		"/data/train.txt":      "/node/host/data/pod-a/in/train.txt",
		"--config=/etc/sedna/": "--config=/etc/sedna/",
	}
	for in, want := range cases {
		require.Equal(t, want, pathMap{mounts: mounts, volumes: volumes}.rewrite(in), in)
	}
}

func projectedPod(script string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "gm", Namespace: "sedna", UID: "uid-v", Labels: map[string]string{"app": "gm"}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			// As build/kb: the image's user, and its group as fsGroup, so that the 0400 secret
			// item is readable through the group.
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To(imageUser), FSGroup: ptr.To(imageGroup)},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "gm-config"}}}},
				{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s3",
					Items: []corev1.KeyToPath{{Key: "id", Path: "aws/id", Mode: ptr.To(int32(0o400))}}}}},
				{Name: "maybe", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr.To(true)}}},
				{Name: "api", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "lc/token", Audience: "sedna", ExpirationSeconds: ptr.To(int64(600))}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "root-ca"},
						Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
						{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}},
						{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
					}}},
				}}}},
			},
			Containers: []corev1.Container{{Name: "main", Image: "shell", Args: []string{"-c", script},
				Env: []corev1.EnvVar{
					{Name: "GM_CONFIG", Value: "/etc/sedna/gm.yaml"},
					{Name: "SA", Value: "/var/run/secrets/kubernetes.io/serviceaccount"},
					{Name: "CREDS", Value: "/creds/aws/id"},
				},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "config", MountPath: "/etc/sedna/gm.yaml", SubPath: "gm.yaml"},
					{Name: "creds", MountPath: "/creds"},
					{Name: "api", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"},
				}}},
		},
	}
}

func volumeObjects() objects {
	return objects{
		secrets: map[string]*corev1.Secret{"s3": {Data: map[string][]byte{"id": []byte("AKIA"), "key": []byte("hidden")}}},
		configMaps: map[string]*corev1.ConfigMap{
			"gm-config": {Data: map[string]string{"gm.yaml": "kubeConfig: \"\"\n", "other": "x"}},
			"root-ca":   {Data: map[string]string{"ca.crt": "CA", "unused": "u"}},
		},
	}
}

// TestVolumesAreWrittenBeforeContainersStart checks each materialised volume type through what a
// container reads at its rewritten paths, and the files' modes.
func TestVolumesAreWrittenBeforeContainersStart(t *testing.T) {
	opts := runnerOptions(t)
	opts.Objects = volumeObjects()
	tokens := &fakeTokens{lifetime: time.Hour}
	opts.Tokens = tokens
	pod, err := StartPod(projectedPod(`set -e; cat "$GM_CONFIG"; cat "$CREDS"; echo; cat "$SA/token" "$SA/lc/token" "$SA/ca.crt" "$SA/namespace"; echo; cat "$SA/labels"`), opts)
	require.NoError(t, err)
	<-pod.Done()
	status := pod.Status()
	require.Equal(t, corev1.PodSucceeded, status.Phase, "%s %+v", status.Message, status.ContainerStatuses)
	log, err := os.ReadFile(filepath.Join(opts.LogDir, "sedna_gm_main.log"))
	require.NoError(t, err)
	require.Equal(t, "kubeConfig: \"\"\nAKIA\ntoken-1token-2CAsedna\napp=\"gm\"", string(log))

	require.Equal(t, []tokenRequest{
		{pod: "sedna/gm", audience: "", expirationSeconds: 3600},
		{pod: "sedna/gm", audience: "sedna", expirationSeconds: 600},
	}, tokens.issued())

	volumes := filepath.Join(opts.NodeRoot, "pods", "uid-v", "volumes")
	// The kubelet's modes: tokens private to the pod's runAsUser; with fsGroup (as root, which
	// can give files to a group) every file group-readable and the group's.
	modes := map[string]os.FileMode{
		"config/gm.yaml": 0o644, "config/other": 0o644, "creds/aws/id": 0o400,
		"api/token": 0o600, "api/lc/token": 0o600, "api/ca.crt": 0o644, "api/namespace": 0o644,
	}
	if canDropPrivileges() {
		modes["creds/aws/id"], modes["api/token"], modes["api/lc/token"] = 0o440, 0o640, 0o640
	}
	for path, want := range modes {
		info, err := os.Stat(filepath.Join(volumes, path))
		require.NoError(t, err, path)
		require.Equal(t, want, info.Mode().Perm(), path)
		if canDropPrivileges() {
			st := info.Sys().(*syscall.Stat_t)
			require.EqualValues(t, imageGroup, st.Gid, "%s: the fsGroup's", path)
			if strings.HasSuffix(path, "token") {
				require.EqualValues(t, imageUser, st.Uid, "%s: the runAsUser's", path)
			}
		}
	}
	for _, absent := range []string{"creds/key", "api/unused"} {
		_, err := os.Stat(filepath.Join(volumes, absent))
		require.ErrorIs(t, err, os.ErrNotExist, "only the listed items are written: %s", absent)
	}
	entries, err := os.ReadDir(filepath.Join(volumes, "maybe"))
	require.NoError(t, err, "a missing optional configMap is an empty volume")
	require.Empty(t, entries)
}

// TestMissingObjectKeepsThePodWaiting: like the kubelet, a volume whose non-optional object is
// missing holds the pod back with CreateContainerConfigError until the object appears.
func TestMissingObjectKeepsThePodWaiting(t *testing.T) {
	opts := runnerOptions(t)
	src := &lockedObjects{objects: volumeObjects()}
	delete(src.objects.configMaps, "gm-config")
	opts.Objects = src
	opts.Tokens = &fakeTokens{lifetime: time.Hour}
	pod, err := StartPod(projectedPod(`cat "$GM_CONFIG"`), opts)
	require.NoError(t, err)
	t.Cleanup(pod.Stop)
	require.Eventually(t, func() bool {
		waiting := pod.Status().ContainerStatuses[0].State.Waiting
		return waiting != nil && waiting.Reason == "CreateContainerConfigError"
	}, 10*time.Second, 20*time.Millisecond)
	status := pod.Status()
	require.Equal(t, corev1.PodPending, status.Phase)
	require.Contains(t, status.ContainerStatuses[0].State.Waiting.Message, `volume config: configMap gm-config: configmap "gm-config" not found`)

	src.addConfigMap("gm-config", &corev1.ConfigMap{Data: map[string]string{"gm.yaml": "late\n"}})
	select {
	case <-pod.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the pod did not start once its configMap existed")
	}
	require.Equal(t, corev1.PodSucceeded, pod.Status().Phase)
	log, err := os.ReadFile(filepath.Join(opts.LogDir, "sedna_gm_main.log"))
	require.NoError(t, err)
	require.Equal(t, "late\n", string(log))
}

func TestMissingItemKeyIsAnError(t *testing.T) {
	opts := runnerOptions(t)
	opts.Objects = volumeObjects()
	pod := &RunningPod{pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "sedna", Name: "p", UID: "u"}}, opts: opts}
	items := []corev1.KeyToPath{{Key: "missing", Path: "m"}}
	_, err := pod.configMapFiles("root-ca", items, defaultFileMode, nil)
	require.ErrorContains(t, err, "configMap root-ca has no key missing")
	files, err := pod.configMapFiles("root-ca", items, defaultFileMode, ptr.To(true))
	require.NoError(t, err, "an optional configMap's missing keys are skipped")
	require.Empty(t, files)
	_, err = pod.secretFiles("s3", nil, defaultFileMode, nil)
	require.NoError(t, err)
	_, _, err = pod.setUpVolumes(context.Background())
	require.NoError(t, err, "a pod without volumes needs nothing")

	require.ErrorContains(t, writeFileAtomic(t.TempDir(), "../escape", nil, 0o644, -1, -1), "must be relative and stay inside the volume")
}

// TestTokensAreRefreshedUntilThePodStops uses tokens that live a second: each is replaced, through
// a rename, when 80% of its life has passed, and refreshing ends with the pod.
func TestTokensAreRefreshedUntilThePodStops(t *testing.T) {
	opts := runnerOptions(t)
	tokens := &fakeTokens{lifetime: time.Second}
	opts.Tokens = tokens
	p := projectedPod("sleep 300")
	p.Spec.Volumes = p.Spec.Volumes[3:4]
	p.Spec.Volumes[0].Projected.Sources = p.Spec.Volumes[0].Projected.Sources[:1]
	p.Spec.Containers[0].VolumeMounts = p.Spec.Containers[0].VolumeMounts[2:]
	start := time.Now()
	pod, err := StartPod(p, opts)
	require.NoError(t, err)
	tokenPath := filepath.Join(opts.NodeRoot, "pods", "uid-v", "volumes", "api", "token")
	require.Eventually(t, func() bool {
		data, err := os.ReadFile(tokenPath)
		return err == nil && string(data) == "token-3"
	}, 10*time.Second, 10*time.Millisecond, "the token should be refreshed twice")
	// Two refreshes at 80% of a second each: not before 1.6s, and not much later.
	require.GreaterOrEqual(t, time.Since(start), 1600*time.Millisecond)
	info, err := os.Stat(tokenPath)
	require.NoError(t, err)
	wantMode := os.FileMode(0o600)
	if canDropPrivileges() {
		wantMode = 0o640 // and the fsGroup's
	}
	require.Equal(t, wantMode, info.Mode().Perm())
	entries, err := os.ReadDir(filepath.Dir(tokenPath))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary files are left behind: %v", entries)

	pod.Stop()
	issued := len(tokens.issued())
	time.Sleep(1500 * time.Millisecond)
	require.Len(t, tokens.issued(), issued, "a stopped pod's tokens are not refreshed")
}

func TestRefreshAt(t *testing.T) {
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]struct {
		lifetime time.Duration
		want     time.Duration
	}{
		"an hour's token at 48 minutes":    {lifetime: time.Hour, want: 48 * time.Minute},
		"an extended token after a day":    {lifetime: 365 * 24 * time.Hour, want: 24 * time.Hour},
		"a second's token at 800 millis":   {lifetime: time.Second, want: 800 * time.Millisecond},
		"an already expired token at once": {lifetime: -time.Second, want: -800 * time.Millisecond},
	}
	for name, tc := range cases {
		token := &projectedToken{issued: issued, expiry: issued.Add(tc.lifetime)}
		require.Equal(t, issued.Add(tc.want), token.refreshAt(), name)
	}
}

func TestSubPathIsCreatedAndChecked(t *testing.T) {
	dir := t.TempDir()
	volumes := map[string]string{"data": dir}
	mounts, err := subPaths([]corev1.VolumeMount{{Name: "data", MountPath: "/out", SubPathExpr: "$(POD)/out"}}, volumes, map[string]string{"POD": "p1"})
	require.NoError(t, err)
	require.Equal(t, "p1/out", mounts[0].SubPath)
	require.DirExists(t, filepath.Join(dir, "p1", "out"))
	require.Equal(t, filepath.Join(dir, "p1", "out", "model.pb"), pathMap{mounts: mounts, volumes: volumes}.rewrite("/out/model.pb"))

	_, err = subPaths([]corev1.VolumeMount{{Name: "data", MountPath: "/out", SubPath: "../etc"}}, volumes, nil)
	require.ErrorContains(t, err, `subPath "../etc" must be relative`)
}

// claimObjects is an ObjectSource that also serves claims and volumes.
type claimObjects struct {
	objects
	claims  map[string]*corev1.PersistentVolumeClaim
	volumes map[string]*corev1.PersistentVolume
}

func (c claimObjects) PersistentVolumeClaim(_, name string) (*corev1.PersistentVolumeClaim, error) {
	if claim, ok := c.claims[name]; ok {
		return claim, nil
	}
	return nil, fmt.Errorf("persistentvolumeclaim %q not found", name)
}

func (c claimObjects) PersistentVolume(name string) (*corev1.PersistentVolume, error) {
	if volume, ok := c.volumes[name]; ok {
		return volume, nil
	}
	return nil, fmt.Errorf("persistentvolume %q not found", name)
}

// TestClaimVolumeIsItsBoundVolumesHostPath: a persistentVolumeClaim volume is the host path of
// the PersistentVolume bound to the claim; an unbound claim, a volume bound to another claim or a
// volume type the harness cannot run holds the pod back with a message naming the claim.
func TestClaimVolumeIsItsBoundVolumesHostPath(t *testing.T) {
	claim := func(phase corev1.PersistentVolumeClaimPhase, volume string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "sedna", UID: "claim-uid"},
			Spec: corev1.PersistentVolumeClaimSpec{VolumeName: volume}, Status: corev1.PersistentVolumeClaimStatus{Phase: phase}}
	}
	volume := func(claimUID types.UID, source corev1.PersistentVolumeSource) *corev1.PersistentVolume {
		return &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv"}, Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeSource: source, ClaimRef: &corev1.ObjectReference{Namespace: "sedna", Name: "data", UID: claimUID}}}
	}
	hostPath := corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/kb"}}
	local := corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/mnt/disk1"}}
	nfs := corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/x"}}
	for name, tc := range map[string]struct {
		claim   *corev1.PersistentVolumeClaim
		volume  *corev1.PersistentVolume
		wantDir string
		wantErr string
	}{
		"hostPath volume":         {claim: claim(corev1.ClaimBound, "pv"), volume: volume("claim-uid", hostPath), wantDir: "host/var/lib/kb"},
		"local volume":            {claim: claim(corev1.ClaimBound, "pv"), volume: volume("claim-uid", local), wantDir: "host/mnt/disk1"},
		"local volume, no path":   {claim: claim(corev1.ClaimBound, "pv"), volume: volume("claim-uid", local), wantErr: "the local PersistentVolume's path"},
		"pending claim":           {claim: claim(corev1.ClaimPending, ""), wantErr: `persistentVolumeClaim data is not bound (phase "Pending")`},
		"missing claim":           {wantErr: `persistentVolumeClaim data: persistentvolumeclaim "data" not found`},
		"volume of another claim": {claim: claim(corev1.ClaimBound, "pv"), volume: volume("other-uid", hostPath), wantErr: "persistentVolume pv is not bound to it"},
		"nfs volume":              {claim: claim(corev1.ClaimBound, "pv"), volume: volume("claim-uid", nfs), wantErr: "neither hostPath nor local"},
	} {
		t.Run(name, func(t *testing.T) {
			opts := runnerOptions(t)
			source := claimObjects{claims: map[string]*corev1.PersistentVolumeClaim{}, volumes: map[string]*corev1.PersistentVolume{}}
			if tc.claim != nil {
				source.claims["data"] = tc.claim
			}
			if tc.volume != nil {
				source.volumes["pv"] = tc.volume
			}
			opts.Objects = source
			if name == "local volume" {
				// A local volume's directory is the administrator's to make.
				require.NoError(t, os.MkdirAll(filepath.Join(opts.NodeRoot, "host", "mnt", "disk1"), 0o755))
			}
			pod := &RunningPod{pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "sedna", Name: "kb", UID: "u"},
				Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}}}, opts: opts}
			paths, _, err := pod.setUpVolumes(context.Background())
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, filepath.Join(opts.NodeRoot, tc.wantDir), paths["data"])
			info, err := os.Stat(paths["data"])
			require.NoError(t, err)
			require.True(t, info.IsDir())
		})
	}
	opts := runnerOptions(t)
	pod := &RunningPod{pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "sedna", Name: "kb", UID: "u"},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}}}, opts: opts}
	_, _, err := pod.setUpVolumes(context.Background())
	require.ErrorContains(t, err, "no claim source is configured")
}

// TestClaimVolumeOwnership: with fsGroup, the kubelet gives a local PersistentVolume to the group
// (group rwx, setgid) and leaves a hostPath one as it is (root:root 0755 when it made it), which
// a non-root pod such as build/kb's then cannot write.
func TestClaimVolumeOwnership(t *testing.T) {
	requireRoot(t)
	for name, tc := range map[string]struct {
		source  corev1.PersistentVolumeSource
		wantGid uint32
		mode    os.FileMode
	}{
		"local":    {source: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: "/mnt/kb"}}, wantGid: uint32(imageGroup), mode: 0o775 | os.ModeSetgid},
		"hostPath": {source: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/mnt/kb"}}, wantGid: 0, mode: 0o755},
	} {
		t.Run(name, func(t *testing.T) {
			opts := runnerOptions(t)
			require.NoError(t, os.MkdirAll(filepath.Join(opts.NodeRoot, "host", "mnt", "kb"), 0o755))
			opts.Objects = claimObjects{
				claims: map[string]*corev1.PersistentVolumeClaim{"data": {ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "sedna", UID: "c"},
					Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv"}, Status: corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound}}},
				volumes: map[string]*corev1.PersistentVolume{"pv": {ObjectMeta: metav1.ObjectMeta{Name: "pv"}, Spec: corev1.PersistentVolumeSpec{
					PersistentVolumeSource: tc.source, ClaimRef: &corev1.ObjectReference{Namespace: "sedna", Name: "data", UID: "c"}}}},
			}
			pod := &RunningPod{pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "sedna", Name: "kb", UID: "u"},
				Spec: corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{RunAsUser: ptr.To(imageUser), FSGroup: ptr.To(imageGroup)},
					Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
						PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}}}, opts: opts}
			paths, _, err := pod.setUpVolumes(context.Background())
			require.NoError(t, err)
			info, err := os.Stat(paths["data"])
			require.NoError(t, err)
			require.Equal(t, tc.wantGid, info.Sys().(*syscall.Stat_t).Gid)
			require.Equal(t, tc.mode, info.Mode()&(os.ModePerm|os.ModeSetgid))
		})
	}
}
