package chaos

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A refused connection is an answer from the other side's stack: it must not count as a cut
// link (an LC killed by another fault refuses too), while a dial that times out does.
func TestCutOffNeedsSilenceNotRefusal(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	var d net.Dialer
	_, refused := d.DialContext(context.Background(), "tcp", addr)
	require.Error(t, refused)
	require.Error(t, cutOff(addr, refused), "a refused dial is not a cut link")

	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	_, timedOut := d.DialContext(ctx, "tcp", addr)
	require.Error(t, timedOut)
	require.NoError(t, cutOff(addr, timedOut), "a dial that timed out shows the node out of reach")
}
