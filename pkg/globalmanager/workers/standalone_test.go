package workers

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestNewPodKeepsTheTemplatesMetadataAndAddsTheOwners(t *testing.T) {
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Name: "ignored", Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"note": "x"},
			Finalizers: []string{"f"}},
		Spec: corev1.PodSpec{NodeName: "edge-1", Containers: []corev1.Container{{Name: "c"}}},
	}
	pod, err := NewPod(testOwner(), "Train", "Job-train-1", template, map[string]string{"round": "1"})
	require.NoError(t, err)
	require.Equal(t, "Job-train-1", pod.Name)
	require.Equal(t, "ns", pod.Namespace)
	require.Equal(t, map[string]string{"team": "a", "round": "1", "incrementallearningjob.sedna.io/name": "Job",
		"incrementallearningjob.sedna.io/uid": "u1", "incrementallearningjob.sedna.io/worker-type": "train"}, pod.Labels)
	require.Equal(t, "x", pod.Annotations["note"])
	require.NotEmpty(t, pod.Annotations[SpecHashAnnotation])
	require.Equal(t, []string{"f"}, pod.Finalizers)
	require.True(t, IsControlledBy(pod, testOwner()))
	require.Equal(t, "edge-1", pod.Spec.NodeName)
	require.Equal(t, map[string]string{"team": "a"}, template.Labels, "input untouched")
}

func TestLCServerEnv(t *testing.T) {
	hostIP := HostIPEnv("HOST_IP")
	require.Equal(t, []corev1.EnvVar{hostIP, {Name: "LC_SERVER", Value: "http://$(HOST_IP):9100"}}, LCServerEnv("", "HOST_IP"))
	require.Equal(t, []corev1.EnvVar{hostIP, {Name: "LC_SERVER", Value: "http://$(HOST_IP):9200"}}, LCServerEnv("http://127.0.0.1:9200", "HOST_IP"))
	require.Equal(t, []corev1.EnvVar{{Name: "LC_SERVER", Value: "http://lc.example:9100"}}, LCServerEnv("http://lc.example:9100", "HOST_IP"))
}

func TestPodTemplateJoinsURLsAndCreatesOutputDirectories(t *testing.T) {
	creds := &S3Credentials{SecretName: "creds", EndpointURL: "https://s3.example"}
	template, err := Worker{
		Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}}}},
		Mounts: []Mount{
			{URLs: []string{"/out/train/1/model.pb", "/models/m.pb"}, EnvName: "MODEL_URLS"},
			{URL: "/out/train/2", EnvName: "MODEL_URL", Output: true},
			{URL: "s3://bkt/out/", EnvName: "OUTPUT_URL", Output: true, Credentials: creds},
		},
	}.PodTemplate()
	require.NoError(t, err)
	require.Equal(t, append([]corev1.EnvVar{
		{Name: "MODEL_URLS", Value: "/home/data/out/train/1/model.pb;/home/data/models/m.pb"},
		{Name: "MODEL_URL", Value: "/home/data/out/train/2"},
		{Name: "OUTPUT_URL", Value: "s3://bkt/out/"},
		{Name: "DATA_PATH_PREFIX", Value: "/home/data"},
	}, creds.Env()...), template.Spec.Containers[0].Env)
	require.Equal(t, []corev1.Volume{
		{Name: "out-train-1", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/out/train/1", Type: ptr.To(corev1.HostPathDirectory)}}},
		{Name: "models", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/models", Type: ptr.To(corev1.HostPathDirectory)}}},
		{Name: "out-train", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/out/train", Type: ptr.To(corev1.HostPathDirectoryOrCreate)}}},
	}, template.Spec.Volumes)
	require.Empty(t, template.Spec.InitContainers, "write targets are not downloaded")
}
