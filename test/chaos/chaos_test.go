//go:build chaos

package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/sedna-go/sedna/test/chaos"
	"github.com/sedna-go/sedna/test/localcluster"
	"github.com/sedna-go/sedna/test/localsedna"
	"github.com/sedna-go/sedna/test/netns"
)

// TestCampaign is `make chaos`: local Sedna with two edge nodes whose LCs reach GM through a
// relay the campaign cuts, a primary and a standby GM, and the joint inference example under
// load; CHAOS_SEED (default: random, printed), CHAOS_DURATION (default 12m) and CHAOS_FAULTS
// (default: as many as fit) choose the campaign. Every process and directory it starts is
// stopped at the end, also on Ctrl-C or SIGTERM.
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
	const subnet = 7 // beside an e2e run's nodes on 127.0.1.x
	var network *netns.Network
	relayHost := "127.0.0.1"
	var storeSize int64
	why := netns.Available()
	if why == nil && os.Getenv("CHAOS_NETNS") == "0" {
		why = errors.New("CHAOS_NETNS=0")
	}
	if why != nil {
		fmt.Printf("chaos: NOT using network namespaces (%v): edge partitions fall back to the TCP relay, no ENOSPC faults\n", why)
	} else {
		var err error
		network, err = netns.Setup(ctx, netns.Options{Subnet: subnet, Nodes: 2})
		require.NoError(t, err)
		t.Cleanup(func() {
			if err := network.Close(); err != nil {
				t.Errorf("removing the edge network: %v", err)
			}
		})
		relayHost = localsedna.EdgeCloudIP(network)
		storeSize = 16 << 20
		fmt.Printf("chaos: edge nodes in network namespaces %s*, partitions take their veth down; LC stores on %d-byte tmpfs mounts\n", netns.Prefix(subnet), storeSize)
	}

	var sedna atomic.Pointer[localsedna.Sedna]
	var primary atomic.Value // string: the primary GM's channel address
	// The relay stands for GM's Service: it sends new connections to the GM that is ready.
	relay, err := chaos.NewRelayOn(relayHost, func(ctx context.Context) (string, error) {
		if s := sedna.Load(); s != nil && !s.GMReady(ctx, localsedna.PrimaryGM) && s.GMReady(ctx, localsedna.StandbyGM) {
			return s.GMChannelAddress(localsedna.StandbyGM), nil
		}
		addr, _ := primary.Load().(string)
		return addr, nil
	})
	require.NoError(t, err)
	t.Cleanup(relay.Close)

	dir := filepath.Join(root, "_output", "chaos")
	s, err := localsedna.Start(ctx, localsedna.Options{Dir: dir, EdgeNodes: 2, DatasetCheckPeriod: time.Second,
		NodeSubnet: subnet, EdgeNetwork: network, EdgeStoreSize: storeSize,
		LCGMAddress: func(gm string) (string, error) {
			primary.Store(gm)
			return relay.Addr(), nil
		}})
	require.NoError(t, err)
	sedna.Store(s)
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stopping local Sedna: %v", err)
		}
		if !t.Failed() {
			_ = os.RemoveAll(dir) // logs of a green run are not needed
		}
	})
	require.NoError(t, s.StartStandbyGM(ctx))

	ns := "chaos"
	_, err = s.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)

	res, err := chaos.Run(ctx, s, chaos.Config{Namespace: ns, Seed: seed, Duration: duration, Faults: faults,
		Relay: relay, Network: network, FullDisk: storeSize > 0, Standby: true, IncrementalLearning: true, Logf: t.Logf})
	if res != nil {
		fmt.Println(res.Table())
	}
	require.NoError(t, err)
	require.Empty(t, res.Failed(), "invariants that did not hold")
}
