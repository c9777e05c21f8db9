//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sedna-go/sedna/test/e2e/framework"
)

// countTimeout bounds how long a count takes to reach status: the LCs check every second here.
const countTimeout = 60 * time.Second

// datasetIndex creates /data/<namespace>/<file> on node with n sample lines and returns its
// path on this machine.
func datasetIndex(t *testing.T, node, namespace, file string, n int) string {
	t.Helper()
	nd, ok := framework.Sedna.Node(node)
	require.True(t, ok, "no node %s", node)
	path := nd.HostPath(filepath.Join("/data", namespace, file))
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	appendSamples(t, path, n)
	return path
}

func appendSamples(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	for i := range n {
		_, err := fmt.Fprintf(f, "images/%d-%d.png %d\n", time.Now().UnixNano(), i, i%10)
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())
}

func createDataset(t *testing.T, namespace, name, node, file string) {
	t.Helper()
	framework.ApplyYAML(t, namespace, fmt.Sprintf(`apiVersion: sedna.io/v1alpha1
kind: Dataset
metadata:
  name: %s
spec:
  url: /data/%s/%s
  format: txt
  nodeName: %s
`, name, namespace, file, node))
}

// waitForSamples waits until the Dataset's status counts want samples.
func waitForSamples(t *testing.T, namespace, name string, want int) {
	t.Helper()
	framework.Eventually(t, countTimeout, fmt.Sprintf("dataset %s/%s to count %d samples", namespace, name, want), func() (bool, string) {
		ds, err := framework.Sedna.Client.SednaV1alpha1().Datasets(namespace).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return ds.Status.NumberOfSamples == want, fmt.Sprintf("numberOfSamples=%d conditions=%v", ds.Status.NumberOfSamples, ds.Status.Conditions)
	})
}

// A Dataset on an edge node: its LC counts the index file's samples into status and follows the
// file as it grows.
func TestDatasetSamplesFollowTheIndex(t *testing.T) {
	ns := framework.NewNamespace(t)
	index := datasetIndex(t, "edge-node-1", ns, "train.txt", 10)
	createDataset(t, ns, "train", "edge-node-1", "train.txt")
	waitForSamples(t, ns, "train", 10)
	for _, more := range []int{5, 1, 100} {
		appendSamples(t, index, more)
	}
	waitForSamples(t, ns, "train", 116)
}
