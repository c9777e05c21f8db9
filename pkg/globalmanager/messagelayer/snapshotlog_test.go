package messagelayer

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2"

	"github.com/sedna-go/sedna/pkg/channel"
)

// The fault campaign (test/chaos) tells a snapshot a partition interrupted from one that ended
// by two V(2) lines of GM's: "LC connected" when the snapshot starts and "Snapshot
// acknowledged" once the node acknowledged its sync frame, never before.
func TestTheSnapshotsEndIsLoggedOnceTheNodeAcknowledgedItsSync(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	// The hub's own logger, in its context (not klog's global one, which other tests' goroutines
	// still read): its verbosity, not klog's -v, decides.
	logger := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, args)
	}, funcr.Options{Verbosity: 2})
	logged := func(msg, node string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, l := range lines {
			if strings.Contains(l, `"msg"="`+msg+`"`) && strings.Contains(l, `"node"="`+node+`"`) {
				return true
			}
		}
		return false
	}

	ts := newTestServerIn(t, klog.NewContext(context.Background(), logger), Options{},
		&StaticTokenAuthenticator{Tokens: map[string]string{"token-a": "node-a"}}, nil)
	ts.hub.Publish(datasetKey("d"), 1, object("d", 1), "node-a")
	lc := ts.connect(t, "node-a")
	insert := lc.read()
	require.Equal(t, channel.OpInsert, insert.Header.Operation)
	lc.ack(insert)
	sync := lc.read()
	require.Equal(t, channel.OpSync, sync.Header.Operation)
	require.Eventually(t, func() bool { return logged("LC connected", "node-a") }, 5*time.Second, 10*time.Millisecond)
	// The insert's ack is in; the sync's is not: the snapshot has not ended.
	lc.report(1, "r", "{}")
	lc.read() // the report's ack: GM read the insert's ack before it
	require.False(t, logged("Snapshot acknowledged", "node-a"), "logged before the sync was acknowledged")

	lc.ack(sync)
	require.Eventually(t, func() bool { return logged("Snapshot acknowledged", "node-a") }, 5*time.Second, 10*time.Millisecond)
}
