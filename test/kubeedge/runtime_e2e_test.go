//go:build e2ekubeedge

package kubeedge_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// runtime is the edge node's container runtime.
type runtime struct {
	endpoint, address, nodeIP, sandboxImage string
}

// startRuntime: TEMPORARY development stand-in until test/realnode's containerd harness is merged
// (KUBEEDGE_DEV_CONTAINERD names the socket of a containerd started by hand).
func startRuntime(_ context.Context, t *testing.T, _ string) *runtime {
	sock := os.Getenv("KUBEEDGE_DEV_CONTAINERD")
	if sock == "" {
		t.Fatal("KUBEEDGE_DEV_CONTAINERD is not set")
	}
	return &runtime{endpoint: "unix://" + sock, address: sock, nodeIP: os.Getenv("KUBEEDGE_NODE_IP"), sandboxImage: "kubeedge/sedna-pause:v0.7.0"}
}

func (r *runtime) importImages(ctx context.Context, t *testing.T, dir string, files ...string) {
	for _, f := range files {
		out, err := exec.CommandContext(ctx, "ctr", "--address", r.address, "-n", "k8s.io", "images", "import", filepath.Join(dir, f)).CombinedOutput()
		require.NoError(t, err, string(out))
	}
}

func (r *runtime) containerCount(ctx context.Context, t *testing.T) int {
	out, err := exec.CommandContext(ctx, "ctr", "--address", r.address, "-n", "k8s.io", "containers", "ls", "-q").CombinedOutput()
	require.NoError(t, err, string(out))
	return len(strings.Fields(string(out)))
}
