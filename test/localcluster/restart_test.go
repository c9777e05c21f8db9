package localcluster

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2/ktesting"
)

// Restart of etcd (killed) and of the apiserver (stopped) keeps the stored objects, serves
// again with new processes, and leaves nothing behind for Stop.
func TestRestartKeepsData(t *testing.T) {
	binDir := requireBinaries(t)
	_, ctx := ktesting.NewTestContext(t)
	c, err := Start(ctx, Options{Dir: filepath.Join(t.TempDir(), "cluster"), BinDir: binDir})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Stop()) })
	client, err := kubernetes.NewForConfig(c.Config)
	require.NoError(t, err)
	_, err = client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	require.NoError(t, err)

	for _, tc := range []struct {
		name string
		kill bool
	}{{"etcd", true}, {"kube-apiserver", false}, {"kube-apiserver", true}, {"etcd", false}} {
		before := c.PIDs()[tc.name]
		require.NoError(t, c.Restart(ctx, tc.name, tc.kill), "%s kill=%v", tc.name, tc.kill)
		require.NotEqual(t, before, c.PIDs()[tc.name], "%s was not restarted", tc.name)
		cm, err := client.CoreV1().ConfigMaps("default").Get(context.Background(), "kept", metav1.GetOptions{})
		require.NoError(t, err, "after restarting %s (kill=%v)", tc.name, tc.kill)
		require.Equal(t, "v", cm.Data["k"])
	}
	require.Error(t, c.Restart(ctx, "no-such-process", true))
}
