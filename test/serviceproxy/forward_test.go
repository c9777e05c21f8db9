package serviceproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"
)

// startPortProxy serves a portProxy on a free loopback port without a cluster.
func startPortProxy(t *testing.T, endpoints []string) (*portProxy, string) {
	t.Helper()
	logger, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	pp := &portProxy{listener: listener, dialTimeout: 2 * time.Second, conns: newConnSet(), logger: logger}
	pp.setEndpoints(endpoints)
	var wg sync.WaitGroup
	wg.Add(1)
	go pp.acceptLoop(ctx, &wg)
	t.Cleanup(func() {
		cancel()
		_ = listener.Close()
		pp.conns.closeAll()
		wg.Wait()
	})
	return pp, listener.Addr().String()
}

func TestForwardRoundRobinWithFailover(t *testing.T) {
	first := echoServer(t, "127.0.0.1:0", "first")
	second := echoServer(t, "127.0.0.1:0", "second")
	dead := unusedAddress(t, "127.0.0.1")
	_, address := startPortProxy(t, mergeEndpoints([]string{first, second, dead}))

	// The answer after the identity proves the request crossed the proxy's half-close.
	counts := map[string]int{}
	for range 6 {
		answer, err := request(address)
		require.NoError(t, err)
		counts[answer]++
	}
	// Connections that start at the dead endpoint fall over to the next one, so both live
	// endpoints serve and every connection succeeds.
	require.Len(t, counts, 2, "answers: %v", counts)
	require.Positive(t, counts["first\nping"])
	require.Positive(t, counts["second\nping"])
}

func TestForwardWithoutEndpointsClosesConnection(t *testing.T) {
	pp, address := startPortProxy(t, nil)
	// Closed unread, the connection ends in an EOF or a reset depending on timing; either way
	// there is no answer.
	answer, err := request(address)
	require.Error(t, err, "answer: %q", answer)

	require.True(t, pp.setEndpoints([]string{echoServer(t, "127.0.0.1:0", "late")}))
	answer, err = request(address)
	require.NoError(t, err)
	require.Equal(t, "late\nping", answer)
}

func TestCandidatesRotate(t *testing.T) {
	pp := &portProxy{}
	require.Empty(t, pp.candidates())
	pp.setEndpoints([]string{"a", "b", "c"})
	require.Equal(t, []string{"a", "b", "c"}, pp.candidates())
	require.Equal(t, []string{"b", "c", "a"}, pp.candidates())
	require.False(t, pp.setEndpoints([]string{"a", "b", "c"}), "unchanged endpoints keep the rotation")
	require.Equal(t, []string{"c", "a", "b"}, pp.candidates())
	require.True(t, pp.reportOnce())
	require.False(t, pp.reportOnce())
	require.True(t, pp.setEndpoints([]string{"a"}))
	require.True(t, pp.reportOnce(), "a change of endpoints re-arms the report")
	require.False(t, pp.reportOnce())
	pp.gotThrough()
	require.True(t, pp.reportOnce(), "a connection that got through re-arms the report")
}

// Forward carries connections to its one target until its context ends; then it takes no new
// connection and closes the ones it carries, which the target would otherwise keep open.
func TestForwardToOneTargetEndsWithItsContext(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The target greets and then holds every connection until the test ends.
	target, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	release := make(chan struct{})
	t.Cleanup(func() { close(release); _ = target.Close() })
	go func() {
		for {
			conn, err := target.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = conn.Close() }()
				_, _ = io.WriteString(conn, "apiserver\n")
				<-release
			}()
		}
	}()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	wait := Forward(ctx, listener, target.Addr().String())

	held, err := net.Dial("tcp", listener.Addr().String())
	require.NoError(t, err)
	defer func() { _ = held.Close() }()
	greeting := make([]byte, len("apiserver\n"))
	_, err = io.ReadFull(held, greeting)
	require.NoError(t, err)
	require.Equal(t, "apiserver\n", string(greeting), "the connection is carried to the target")

	cancel()
	done := make(chan struct{})
	go func() { wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		require.FailNow(t, "the forwarder still carries a connection the target holds open")
	}
	require.NoError(t, held.SetReadDeadline(time.Now().Add(30*time.Second)))
	_, err = io.Copy(io.Discard, held)
	require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "a connection carried before the end was left open")
	_, err = request(listener.Addr().String())
	require.Error(t, err, "a new connection after the end")
}
