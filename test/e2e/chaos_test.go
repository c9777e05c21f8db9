//go:build e2e

package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/test/chaos"
	"github.com/sedna-go/sedna/test/e2e/framework"
	"github.com/sedna-go/sedna/test/localcluster"
	"github.com/sedna-go/sedna/test/netns"
)

// A short fault campaign (test/chaos) with a fixed seed: at least ten faults while the joint
// inference example answers a steady load and the campaign's test workers send reports with
// IDs; then every invariant of the campaign's table must hold.
//
// As root it runs on a local Sedna of its own (two edge nodes in network namespaces, subnet 8,
// beside make chaos's 7; their stores on tmpfs; a standby GM), as make chaos does: partitions
// are links going down, and full stores are among the faults. Otherwise it runs on the suite's
// local Sedna, without relay or standby GM: partitions are LC freezes (SIGSTOP), a killed GM is
// restarted at once. CHAOS_NETNS=0 chooses the latter as root too.
func TestChaosShortCampaign(t *testing.T) {
	ctx := context.Background()
	cfg := chaos.Config{Seed: 20261205, Faults: 12, Duration: 3 * time.Minute, Logf: t.Logf}
	s := framework.Sedna
	why := netns.Available()
	if why == nil && os.Getenv("CHAOS_NETNS") == "0" {
		why = errors.New("CHAOS_NETNS=0")
	}
	if why != nil {
		t.Logf("not root (%v): the campaign runs on the suite's local Sedna without network namespaces", why)
		cfg.Namespace = framework.NewNamespace(t)
	} else {
		dir := filepath.Join(localcluster.RepoRoot(), "_output", "e2e-chaos")
		st, err := chaos.StartSedna(ctx, chaos.SetupOptions{Dir: dir, Subnet: 8, EdgeNodes: 2, Logf: t.Logf})
		t.Cleanup(func() {
			if err := st.Close(dir, !t.Failed()); err != nil {
				t.Errorf("stopping the campaign's local Sedna: %v", err)
			}
		})
		require.NoError(t, err)
		s = st.Sedna
		seed, faults, duration, logf := cfg.Seed, cfg.Faults, cfg.Duration, cfg.Logf
		cfg = st.Config()
		cfg.Seed, cfg.Faults, cfg.Duration, cfg.Logf = seed, faults, duration, logf
		// Short partitions: the campaign must stay short.
		cfg.MaxPartition = 20 * time.Second
	}
	res, err := chaos.Run(ctx, s, cfg)
	if res != nil {
		t.Log("\n" + res.Table())
	}
	require.NoError(t, err)
	require.GreaterOrEqual(t, res.Injected, 10)
	require.Empty(t, res.Failed(), "invariants that did not hold")
}
