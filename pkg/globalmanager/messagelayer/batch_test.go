package messagelayer

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/channel"
)

// countingListener counts the writes made on the TCP connections it accepts.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{Conn: c, writes: l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A node's snapshot leaves in a few writes (TLS records of up to 16 KiB), not one per frame, and
// arrives as the same frames in the same order.
func TestASnapshotLeavesInFewWrites(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hub := NewHub(Options{}, nil)
	const resources = 100
	for i := range resources {
		hub.Publish(channel.Key{Kind: "dataset", Namespace: "default", Name: fmt.Sprintf("d-%03d", i)}, uint64(i+1), benchObject, "node-a")
	}
	var writes atomic.Int64
	srv := httptest.NewUnstartedServer(NewServer(ctx, hub, &StaticTokenAuthenticator{Tokens: map[string]string{"token-a": "node-a"}}))
	srv.Listener = countingListener{Listener: srv.Listener, writes: &writes}
	srv.StartTLS()
	defer srv.Close()
	ts := &testServer{hub: hub, srv: srv}

	lc := ts.connect(t, "node-a")
	inserts, sync := lc.readSnapshot()
	require.Len(t, inserts, resources)
	require.Len(t, sync, resources)
	for i, f := range inserts {
		require.Equal(t, fmt.Sprintf("d-%03d", i), f.Header.ResourceName, "frames keep their order")
	}
	// ~250 bytes per frame: the 101 frames fit in two 16 KiB batches, plus the TLS handshake's
	// and the HTTP upgrade's few writes. Without batching this is over 101.
	require.LessOrEqual(t, writes.Load(), int64(12), "writes for the handshake and a snapshot of %d frames", resources+1)
}
