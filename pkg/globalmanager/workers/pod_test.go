package workers

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestPlanMountFollowsUpstreamsURLTable(t *testing.T) {
	tests := map[string]struct {
		url  string
		want mountPlan
		err  string
	}{
		"host file":         {url: "/data/models/m.pb", want: mountPlan{value: "/home/data/data/models/m.pb", hostDir: "/data/models"}},
		"host dir":          {url: "/data/models/", want: mountPlan{value: "/home/data/data/models/", hostDir: "/data/models"}},
		"host path at /":    {url: "/m.pb", want: mountPlan{value: "/home/data/m.pb", hostDir: "/"}},
		"host path dotdot":  {url: "/data/../etc/passwd", err: `must not contain ".."`},
		"s3 file":           {url: "s3://bucket/a/b/m.pb", want: mountPlan{value: "/downloads/bucket/a/b/m.pb", downloadTo: "/downloads/bucket/a/b"}},
		"s3 prefix":         {url: "s3://bucket/a/b/", want: mountPlan{value: "/downloads/bucket/a/b/", downloadTo: "/downloads/bucket/a/b"}},
		"s3 bucket":         {url: "s3://bucket", want: mountPlan{value: "/downloads/bucket/", downloadTo: "/downloads/bucket"}},
		"https":             {url: "https://host:8443/m/x.tar.gz?sig=1", want: mountPlan{value: "/downloads/host:8443/m/x.tar.gz", downloadTo: "/downloads/host:8443/m"}},
		"http dotdot":       {url: "http://host/../x", err: `must not contain ".."`},
		"s3 without bucket": {url: "s3:///x", err: "no host or bucket"},
		"other scheme":      {url: "obs://bucket/x", want: mountPlan{value: "obs://bucket/x"}},
		"model id":          {url: "Qwen/Qwen2-0.5B", want: mountPlan{value: "Qwen/Qwen2-0.5B"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := planMount(tc.url)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestHostPathVolumeName(t *testing.T) {
	require.Equal(t, "data-big-model", HostPathVolumeName("/data/Big_Model"))
	require.Equal(t, "data-modelsz", HostPathVolumeName("/data/models/"))
	require.Equal(t, "sedna-default-volume-name", HostPathVolumeName("/"))
	long := "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/x"
	other := "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/y"
	require.LessOrEqual(t, len(HostPathVolumeName(long)), 63)
	require.NotEqual(t, HostPathVolumeName(long), HostPathVolumeName(other), "long paths do not collide")
}

func TestPodTemplateAppendsEnvAndMountsToEveryContainer(t *testing.T) {
	creds := &S3Credentials{SecretName: "creds", EndpointURL: "https://s3.example"}
	userInit := corev1.Container{Name: "user-init"}
	w := Worker{
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "mine"}},
			Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{userInit},
				Containers: []corev1.Container{
					{Name: "a", Env: []corev1.EnvVar{{Name: "USER", Value: "1"}}},
					{Name: "b"},
				},
				Volumes: []corev1.Volume{{Name: "user-volume"}},
			},
		},
		Env: []corev1.EnvVar{{Name: "NAMESPACE", Value: "ns"}},
		Mounts: []Mount{
			{URL: "/data/m/a.pb", EnvName: "MODEL_URL"},
			{URL: "/data/m/b.pb", EnvName: "OTHER_MODEL_URL"},
			{URL: "s3://bkt/x/data.csv", EnvName: "TRAIN_DATASET_URL", Credentials: creds},
			{URL: "http://web/y/z.zip", EnvName: "TEST_DATASET_URL"},
		},
	}
	original := w.Template.DeepCopy()
	template, err := w.PodTemplate()
	require.NoError(t, err)
	require.Equal(t, original, &w.Template, "the input template is not changed")

	wantEnv := []corev1.EnvVar{
		{Name: "NAMESPACE", Value: "ns"},
		{Name: "MODEL_URL", Value: "/home/data/data/m/a.pb"},
		{Name: "OTHER_MODEL_URL", Value: "/home/data/data/m/b.pb"},
		{Name: "TRAIN_DATASET_URL", Value: "/downloads/bkt/x/data.csv"},
		{Name: "TEST_DATASET_URL", Value: "/downloads/web/y/z.zip"},
		{Name: "DATA_PATH_PREFIX", Value: "/home/data"},
	}
	wantMounts := []corev1.VolumeMount{
		{Name: "data-m", MountPath: "/home/data/data/m"},
		{Name: "sedna-storage-initializer", MountPath: "/downloads", ReadOnly: true},
	}
	require.Equal(t, append([]corev1.EnvVar{{Name: "USER", Value: "1"}}, wantEnv...), template.Spec.Containers[0].Env, "user env first")
	require.Equal(t, wantEnv, template.Spec.Containers[1].Env)
	require.Equal(t, wantMounts, template.Spec.Containers[0].VolumeMounts)
	require.Equal(t, wantMounts, template.Spec.Containers[1].VolumeMounts)
	require.Equal(t, []corev1.Volume{
		{Name: "user-volume"},
		{Name: "data-m", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data/m", Type: ptr.To(corev1.HostPathDirectory)}}},
		{Name: "sedna-storage-initializer", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}, template.Spec.Volumes, "one volume per host directory")
	require.Len(t, template.Spec.InitContainers, 2)
	initializer := template.Spec.InitContainers[0]
	require.Equal(t, InitializerName, initializer.Name)
	require.Equal(t, userInit, template.Spec.InitContainers[1], "the user's init containers run after the download")
	require.Equal(t, []string{"s3://bkt/x/data.csv", "/downloads/bkt/x", "http://web/y/z.zip", "/downloads/web/y"}, initializer.Args)
	require.Equal(t, creds.Env(), initializer.Env)
	require.Equal(t, corev1.TerminationMessageFallbackToLogsOnError, initializer.TerminationMessagePolicy)
	require.Equal(t, "1Gi", ptr.To(initializer.Resources.Limits[corev1.ResourceMemory]).String())
	require.Equal(t, map[string]string{"app": "mine"}, template.Labels)
}

func TestPodTemplateWithoutMountsAddsNothingButEnv(t *testing.T) {
	template, err := Worker{
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}}},
		Env:      []corev1.EnvVar{{Name: "X", Value: "1"}},
		Mounts:   []Mount{{URL: "hf-model-id", EnvName: "MODEL_URL"}},
	}.PodTemplate()
	require.NoError(t, err)
	require.Empty(t, template.Spec.InitContainers)
	require.Empty(t, template.Spec.Volumes)
	require.Equal(t, []corev1.EnvVar{{Name: "X", Value: "1"}, {Name: "MODEL_URL", Value: "hf-model-id"}}, template.Spec.Containers[0].Env)
}

func TestPodTemplateRefusesTwoCredentialSecrets(t *testing.T) {
	_, err := Worker{Mounts: []Mount{
		{URL: "s3://a/x", EnvName: "A", Credentials: &S3Credentials{SecretName: "one", EndpointURL: "https://e"}},
		{URL: "s3://b/x", EnvName: "B", Credentials: &S3Credentials{SecretName: "two", EndpointURL: "https://e"}},
	}}.PodTemplate()
	require.ErrorContains(t, err, `only one S3 credential Secret per pod, got "one" and "two"`)
}

func TestS3CredentialsFromSecret(t *testing.T) {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds", Namespace: "ns", Annotations: map[string]string{"s3-endpoint": "minio:9000", "s3-usehttps": "0"}},
		Data:       map[string][]byte{"ACCESS_KEY_ID": []byte("ak"), "SECRET_ACCESS_KEY": []byte("sk")},
	}
	creds, err := S3CredentialsFromSecret(secret)
	require.NoError(t, err)
	require.Equal(t, &S3Credentials{SecretName: "creds", EndpointURL: "http://minio:9000"}, creds)
	for _, e := range creds.Env() {
		require.NotContains(t, []string{"ak", "sk"}, e.Value, "no key in the pod spec")
	}

	delete(secret.Annotations, "s3-usehttps")
	creds, err = S3CredentialsFromSecret(secret)
	require.NoError(t, err)
	require.Equal(t, "https://minio:9000", creds.EndpointURL)

	delete(secret.Data, "SECRET_ACCESS_KEY")
	_, err = S3CredentialsFromSecret(secret)
	require.ErrorContains(t, err, "secret ns/creds")
	require.ErrorContains(t, err, "SECRET_ACCESS_KEY")
}

func TestAWriteTargetBelowTheRootIsMountedAsItsOwnDirectory(t *testing.T) {
	w := Worker{
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}},
		Mounts: []Mount{
			{URL: "/model", EnvName: "MODEL_URL", Output: true},
			{URL: "/data/train.txt", EnvName: "TRAIN_DATASET_URL"},
		},
	}
	template, err := w.PodTemplate()
	require.NoError(t, err)
	var hostPaths []string
	for _, v := range template.Spec.Volumes {
		hostPaths = append(hostPaths, v.HostPath.Path)
	}
	require.Equal(t, []string{"/model", "/data"}, hostPaths, "never the node's / writable")
	require.Equal(t, "/home/data/model", template.Spec.Containers[0].VolumeMounts[0].MountPath)
	env := map[string]string{}
	for _, e := range template.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	require.Equal(t, "/home/data/model", env["MODEL_URL"])
}

func TestPodTemplateRefusesWriteTargetsOnTheNodesRootAndSystemTrees(t *testing.T) {
	for _, url := range []string{"/", "/.", "//", "/etc/kubernetes/manifests/m.pb", "/etc", "/var/lib/kubelet/pods/x",
		"/var/lib/sedna/", "/var/x.pb", "/usr/local/bin/", "/lib64/x", "/proc/1/", "/run/containerd/x"} {
		_, err := Worker{Mounts: []Mount{{URL: url, EnvName: "MODEL_URL", Output: true, Source: `Model "ns/m"`}}}.PodTemplate()
		require.ErrorContains(t, err, `MODEL_URL: Model "ns/m" url "`+url+`"`, url)
		require.ErrorContains(t, err, "must not mount the node's", url)
	}
	// A read location may still come from there (it is mounted read-only by the runtime's users).
	_, err := Worker{Mounts: []Mount{{URL: "/etc/x", EnvName: "X"}}}.PodTemplate()
	require.NoError(t, err)
	for _, url := range []string{"/data/fl/model", "/data/fl/model/", "/model", "/var/data/m.pb", "/library/m.pb"} {
		template, err := Worker{Mounts: []Mount{{URL: url, EnvName: "MODEL_URL", Output: true}}}.PodTemplate()
		require.NoError(t, err, url)
		require.Len(t, template.Spec.Volumes, 1, url)
	}
}
