package processnode

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

type objects struct {
	secrets    map[string]*corev1.Secret
	configMaps map[string]*corev1.ConfigMap
}

func (o objects) Secret(_, name string) (*corev1.Secret, error) {
	if s, ok := o.secrets[name]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("secret %q not found", name)
}

func (o objects) ConfigMap(_, name string) (*corev1.ConfigMap, error) {
	if c, ok := o.configMaps[name]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("configmap %q not found", name)
}

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "1", "NODE": "edge-1"}
	cases := map[string]string{
		"plain":                  "plain",
		"$(A)":                   "1",
		"x-$(NODE)-$(A)":         "x-edge-1-1",
		"$$(A)":                  "$(A)",
		"$(UNDEFINED)":           "$(UNDEFINED)",
		"$(A":                    "$(A",
		"cost $5":                "cost $5",
		"trailing $":             "trailing $",
		"$(A)$(UNDEFINED)$(A)":   "1$(UNDEFINED)1",
		"http://$(NODE):9100/$$": "http://edge-1:9100/$",
	}
	for in, want := range cases {
		require.Equal(t, want, Expand(in, env), in)
	}
}

func TestResolveEnvAsTheKubeletDoes(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "worker-abc", Namespace: "ns", UID: "u-1", Labels: map[string]string{"app": "ji"},
			Annotations: map[string]string{"note": "n"}},
		Spec:   corev1.PodSpec{NodeName: "edge-1"},
		Status: corev1.PodStatus{PodIP: "127.0.1.1", HostIP: "127.0.1.1"},
	}
	src := objects{
		secrets:    map[string]*corev1.Secret{"s3": {Data: map[string][]byte{"ACCESS_KEY_ID": []byte("id"), "SECRET_ACCESS_KEY": []byte("key")}}},
		configMaps: map[string]*corev1.ConfigMap{"params": {Data: map[string]string{"batch": "32", "lr": "0.1"}}},
	}
	c := &corev1.Container{
		Name: "w", Image: "sedna/worker:v1",
		EnvFrom: []corev1.EnvFromSource{
			{Prefix: "P_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "params"}}},
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr.To(true)}},
		},
		Env: []corev1.EnvVar{
			{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			{Name: "HOST_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostIP"}}},
			{Name: "LC_SERVER", Value: "http://$(HOST_IP):9100"},
			{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "s3"}, Key: "SECRET_ACCESS_KEY"}}},
			{Name: "MAYBE", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "missing"}, Key: "k", Optional: ptr.To(true)}}},
			{Name: "BATCH", Value: "$(P_batch)"},
			{Name: "NODE", Value: "override-$(NODE)"},
		},
	}
	list, env, err := ResolveEnv(pod, c, src)
	require.NoError(t, err)
	require.Equal(t, []string{
		"P_batch=32", "P_lr=0.1", "NODE=override-edge-1", "HOST_IP=127.0.1.1", "LC_SERVER=http://127.0.1.1:9100",
		"APP=ji", "KEY=key", "BATCH=32",
	}, list)
	require.Equal(t, "key", env["KEY"])
	require.NotContains(t, env, "MAYBE")

	c.Env = append(c.Env, corev1.EnvVar{Name: "REQUIRED", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "params"}, Key: "epochs"}}})
	_, _, err = ResolveEnv(pod, c, src)
	require.ErrorContains(t, err, "env REQUIRED: configMap params has no key epochs")

	c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.priority"}}}}
	_, _, err = ResolveEnv(pod, c, src)
	require.ErrorContains(t, err, `fieldRef "spec.priority" is not supported`)
}

func TestImagesAndCommands(t *testing.T) {
	dir := t.TempDir()
	table := filepath.Join(dir, "images")
	require.NoError(t, os.WriteFile(table, []byte("# image binary\nkubeedge/sedna-example-joint-inference-mnist-edge mnist-edge\nexact:v2 /opt/exact\n"), 0o644))
	images, err := LoadImageTable(table, "/repo/_output/bin")
	require.NoError(t, err)

	argv, err := Command(&corev1.Container{Name: "edge", Image: "kubeedge/sedna-example-joint-inference-mnist-edge:v0.3.0",
		Command: []string{"python", "edge.py"}, Args: []string{"--node=$(NODE)", "$$literal"}}, images, map[string]string{"NODE": "edge-1"})
	require.NoError(t, err)
	require.Equal(t, []string{"/repo/_output/bin/mnist-edge", "edge.py", "--node=edge-1", "$literal"}, argv)

	argv, err = Command(&corev1.Container{Name: "x", Image: "exact:v2"}, images, nil)
	require.NoError(t, err)
	require.Equal(t, []string{"/opt/exact"}, argv)

	_, err = Command(&corev1.Container{Name: "x", Image: "exact:v3"}, images, nil)
	require.ErrorContains(t, err, `container x: image "exact:v3" has no local binary`)

	require.NoError(t, os.WriteFile(table, []byte("one two three\n"), 0o644))
	_, err = LoadImageTable(table, "/bin")
	require.ErrorContains(t, err, `line 1: want "image binary"`)
}
