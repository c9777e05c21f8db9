package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sedna-go/sedna/test/localsedna"
	"github.com/sedna-go/sedna/test/netns"
)

// SetupOptions says where a campaign's local Sedna runs.
type SetupOptions struct {
	// Dir holds local Sedna's files.
	Dir string
	// Subnet numbers the namespaces, links and node addresses (netns.Options.Subnet,
	// localsedna.Options.NodeSubnet): two campaigns at once need two subnets.
	Subnet int
	// EdgeNodes is the number of edge nodes.
	EdgeNodes int
	// NoNetns keeps the edge nodes out of network namespaces even as root (CHAOS_NETNS=0).
	NoNetns bool
	// Logf prints what the set-up chose.
	Logf func(format string, args ...any)
}

// Setup is a local Sedna made for a campaign: as root, the edge nodes in network namespaces of
// their own with their LC stores on small tmpfs mounts; otherwise a relay between the LCs and GM
// that partitions cut. Either way a standby GM runs, and GM's channel is reached through the
// relay, which stands for GM's Service and sends new connections to the GM that is ready.
type Setup struct {
	Sedna   *localsedna.Sedna
	Network *netns.Network
	Relay   *Relay
	// StoreSize is the size of each edge node's store tmpfs (0: none).
	StoreSize int64
	// Namespace is where the campaign runs (created by StartSedna).
	Namespace string

	closers []func() error
}

// StartSedna starts local Sedna for a campaign. Close stops everything it started, also after an
// error (it returns a Setup to close with the error).
func StartSedna(ctx context.Context, opts SetupOptions) (*Setup, error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	st := &Setup{Namespace: "chaos"}
	relayHost := "127.0.0.1"
	why := netns.Available()
	if why == nil && opts.NoNetns {
		why = errors.New("CHAOS_NETNS=0")
	}
	if why != nil {
		opts.Logf("chaos: NOT using network namespaces (%v): edge partitions fall back to the TCP relay, no ENOSPC faults", why)
	} else {
		network, err := netns.Setup(ctx, netns.Options{Subnet: opts.Subnet, Nodes: opts.EdgeNodes})
		if err != nil {
			return st, err
		}
		st.Network = network
		st.closers = append(st.closers, network.Close)
		relayHost = localsedna.EdgeCloudIP(network)
		st.StoreSize = 16 << 20
		opts.Logf("chaos: edge nodes in network namespaces %s*, partitions take their veth down; LC stores on %d-byte tmpfs mounts",
			netns.Prefix(opts.Subnet), st.StoreSize)
	}

	var sedna atomic.Pointer[localsedna.Sedna]
	var primary atomic.Value // string: the primary GM's channel address
	relay, err := NewRelayOn(relayHost, func(ctx context.Context) (string, error) {
		if s := sedna.Load(); s != nil && !s.GMReady(ctx, localsedna.PrimaryGM) && s.GMReady(ctx, localsedna.StandbyGM) {
			return s.GMChannelAddress(localsedna.StandbyGM), nil
		}
		addr, _ := primary.Load().(string)
		return addr, nil
	})
	if err != nil {
		return st, err
	}
	st.Relay = relay
	st.closers = append(st.closers, func() error { relay.Close(); return nil })

	s, err := localsedna.Start(ctx, localsedna.Options{Dir: opts.Dir, EdgeNodes: opts.EdgeNodes, DatasetCheckPeriod: time.Second, LogRecordedReports: true,
		NodeSubnet: opts.Subnet, EdgeNetwork: st.Network, EdgeStoreSize: st.StoreSize,
		LCGMAddress: func(gm string) (string, error) {
			primary.Store(gm)
			return relay.Addr(), nil
		}})
	if s != nil {
		st.closers = append(st.closers, s.Stop)
	}
	if err != nil {
		return st, err
	}
	st.Sedna = s
	sedna.Store(s)
	if err := s.StartStandbyGM(ctx); err != nil {
		return st, err
	}
	if _, err := s.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: st.Namespace}}, metav1.CreateOptions{}); err != nil {
		return st, fmt.Errorf("creating namespace %s: %w", st.Namespace, err)
	}
	return st, nil
}

// Config is a campaign's configuration on this set-up: its relay, network, full-disk faults and
// standby GM.
func (st *Setup) Config() Config {
	return Config{Namespace: st.Namespace, Relay: st.Relay, Network: st.Network, FullDisk: st.StoreSize > 0, Standby: true}
}

// Close stops local Sedna, then the relay, then removes the network, and removes dir when
// removeDir is set.
func (st *Setup) Close(dir string, removeDir bool) error {
	var errs []error
	for i := len(st.closers) - 1; i >= 0; i-- {
		errs = append(errs, st.closers[i]())
	}
	st.closers = nil
	if removeDir {
		errs = append(errs, os.RemoveAll(dir))
	}
	return errors.Join(errs...)
}
