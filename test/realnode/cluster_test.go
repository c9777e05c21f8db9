//go:build e2ereal

package realnode

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/sedna-go/sedna/test/localcluster"
)

// Two real nodes join the control plane, the edge one labelled as KubeEdge labels its nodes; when
// they stop, the host is as it was.
func TestNodesJoinAndLeaveNoTrace(t *testing.T) {
	requireHost(t)
	_, ctx := ktesting.NewTestContext(t)
	opts := Options{
		Dir: filepath.Join(localcluster.RepoRoot(), "_output", "realnode-test"),
		Nodes: []NodeSpec{
			{Name: "rn-cloud", Bridge: "snrn-tc0", Subnet: "10.253.1.0/24"},
			{Name: "rn-edge", Bridge: "snrn-te0", Subnet: "10.253.2.0/24", Labels: map[string]string{"node-role.kubernetes.io/edge": ""}},
		},
		ClusterCIDR: "10.253.0.0/16",
		ServiceCIDR: "10.254.253.0/24",
		Images:      []string{filepath.Join(localcluster.RepoRoot(), "_output", "images-e2e-real", "linux-"+runtime.GOARCH, "sedna-pause.tar")},
	}
	c, err := Start(ctx, opts)
	stopped := false
	t.Cleanup(func() {
		if c != nil && !stopped {
			_ = c.Stop(context.Background())
		}
	})
	require.NoError(t, err)
	require.NotNil(t, c.Node("rn-edge"))

	stopped = true
	require.NoError(t, c.Stop(ctx))
	after, err := c.SnapshotHost(ctx)
	require.NoError(t, err)
	require.Empty(t, c.Leftovers(after), "the host changed")
}
