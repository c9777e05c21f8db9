//go:build e2ereal

package realnode

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/sedna-go/sedna/test/localcluster"
)

// requireHost skips when this machine cannot run real nodes (not root, not Linux), or fails when
// SEDNA_E2E_REAL_REQUIRED is set (.ci/run sets it: CI must not pass by skipping the tier).
func requireHost(t *testing.T) {
	t.Helper()
	if err := CheckHost(); err != nil {
		if os.Getenv("SEDNA_E2E_REAL_REQUIRED") != "" {
			t.Fatalf("real nodes cannot run here: %v", err)
		}
		t.Skipf("skipping the real-node tier: %v", err)
	}
	_, ctx := ktesting.NewTestContext(t)
	require.NoError(t, EnsureHostPackages(ctx))
}

// A containerd node: a pod sandbox from the imported pause image gets an address on the node's
// bridge through CNI, and Stop leaves the host as it was (iptables, links, mounts, sysctls).
func TestContainerdRunsASandbox(t *testing.T) {
	requireHost(t)
	_, ctx := ktesting.NewTestContext(t)
	before, err := SnapshotHost(ctx)
	require.NoError(t, err)

	dir := t.TempDir()
	c, err := StartContainerd(ctx, Config{Dir: dir, Name: "sandbox-test", BridgeName: "snrn-test0", Subnet: "10.253.7.0/24"})
	if c != nil {
		t.Cleanup(func() { _ = c.Stop(context.Background()) })
	}
	require.NoError(t, err)
	require.NoError(t, c.ImportImages(ctx, filepath.Join(localcluster.RepoRoot(), "_output", "images-e2e-real", "linux-"+runtime.GOARCH, "sedna-pause.tar")))

	client, closeConn, err := c.criClient(ctx)
	require.NoError(t, err)
	defer closeConn()
	resp, err := client.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "default", Uid: "1"},
		LogDirectory: t.TempDir(),
		Linux:        &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/sedna-realnode-sandbox-test"},
	}})
	require.NoError(t, err, "containerd log:\n%s", tail(c.LogPath()))
	status, err := client.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: resp.GetPodSandboxId()})
	require.NoError(t, err)
	ip := status.GetStatus().GetNetwork().GetIp()
	t.Logf("sandbox %s has address %s", resp.GetPodSandboxId(), ip)
	require.Contains(t, ip, "10.253.7.")
	require.NotEmpty(t, linksOfMaster("snrn-test0"), "no veth on the bridge")

	require.NoError(t, c.Stop(ctx))
	require.NoError(t, removeCgroup("/sedna-realnode-sandbox-test"))
	// The bridge plugin turns on IP forwarding for its gateway; the owner of the host puts it back.
	require.NoError(t, before.RestoreSysctls())
	after, err := SnapshotHost(ctx)
	require.NoError(t, err)
	require.Empty(t, before.Leftovers(after, dir, "snrn-test0"), "the host changed")
}

func tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}
