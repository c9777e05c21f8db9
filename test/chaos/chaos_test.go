//go:build chaos

package chaos_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/sedna-go/sedna/test/chaos"
	"github.com/sedna-go/sedna/test/localcluster"
)

// TestCampaign is `make chaos`: local Sedna with three edge nodes (as root in network namespaces
// whose links the campaign takes down, otherwise behind a relay the campaign cuts), a primary
// and a standby GM, the joint inference example under load, the campaign's test workers, the
// incremental learning example, the federated learning example (its trainers on the three
// edge nodes, one job after another) and the lifelong learning example (on edge node 2, with the
// knowledge base, which the campaign kills too); CHAOS_SEED (default: random, printed), CHAOS_DURATION (default
// 12m) and CHAOS_FAULTS (default: as many as fit) choose the campaign. Every process, namespace
// and directory it starts is removed at the end, also on Ctrl-C or SIGTERM.
func TestCampaign(t *testing.T) {
	seed := rand.Uint64() % 1_000_000
	if v := os.Getenv("CHAOS_SEED"); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err, "CHAOS_SEED")
	}
	duration := 12 * time.Minute
	if v := os.Getenv("CHAOS_DURATION"); v != "" {
		var err error
		duration, err = time.ParseDuration(v)
		require.NoError(t, err, "CHAOS_DURATION")
	}
	faults := 0
	if v := os.Getenv("CHAOS_FAULTS"); v != "" {
		var err error
		faults, err = strconv.Atoi(v)
		require.NoError(t, err, "CHAOS_FAULTS")
	}
	fmt.Printf("chaos: CHAOS_SEED=%d CHAOS_DURATION=%s CHAOS_FAULTS=%d\n", seed, duration, faults)

	// Ctrl-C or SIGTERM ends the injection; Run heals, and the cleanups below stop everything.
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancelRun := context.WithCancel(ctx)
	t.Cleanup(cancelRun)
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
		defer signal.Stop(sigs)
		select {
		case sig := <-sigs:
			fmt.Fprintf(os.Stderr, "chaos: %s: healing and stopping\n", sig)
			cancelRun()
		case <-ctx.Done():
		}
	}()

	root := localcluster.RepoRoot()
	binDir := filepath.Join(root, "_output", "bin")
	build := exec.Command("go", "build", "-o", binDir+"/", "./cmd/...", "./examples/...", "./test/chaos/chaos-reporter")
	build.Dir, build.Stdout, build.Stderr = root, os.Stdout, os.Stderr
	require.NoError(t, build.Run(), "building the binaries")

	// Root: edge nodes in network namespaces, partitions are a link going down, and the LCs'
	// stores are on small tmpfs mounts the campaign fills. Not root: the relay cuts the LCs'
	// link to GM instead, and there is no full-disk fault.
	dir := filepath.Join(root, "_output", "chaos")
	st, err := chaos.StartSedna(ctx, chaos.SetupOptions{Dir: dir, Subnet: 7, EdgeNodes: 3, // beside an e2e run's nodes on 127.0.1.x
		NoNetns: os.Getenv("CHAOS_NETNS") == "0", Logf: func(format string, args ...any) { fmt.Printf(format+"\n", args...) }})
	t.Cleanup(func() {
		// The logs of a green run are not needed.
		if err := st.Close(dir, !t.Failed()); err != nil {
			t.Errorf("stopping local Sedna and removing its network: %v", err)
		}
	})
	require.NoError(t, err)

	cfg := st.Config()
	cfg.Seed, cfg.Duration, cfg.Faults, cfg.Logf = seed, duration, faults, t.Logf
	cfg.IncrementalLearning, cfg.FederatedLearning, cfg.LifelongLearning = true, true, true
	res, err := chaos.Run(ctx, st.Sedna, cfg)
	if res != nil {
		fmt.Println(res.Table())
	}
	require.NoError(t, err)
	require.Empty(t, res.Failed(), "invariants that did not hold")
}
