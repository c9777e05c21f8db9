package freeport

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoopbackPortsAreDistinctBindableAndOutsideTheEphemeralRange(t *testing.T) {
	ports, err := Loopback(20)
	require.NoError(t, err)
	require.Len(t, ports, 20)
	seen := map[int]bool{}
	for _, port := range ports {
		require.False(t, seen[port], "port %d returned twice", port)
		seen[port] = true
		if ephemeralLow() > high {
			require.True(t, port >= low && port <= high, "port %d is outside %d–%d", port, low, high)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		require.NoError(t, err, "port %d is not free", port)
		require.NoError(t, l.Close())
	}
}

func TestABusyPortIsNeverReturned(t *testing.T) {
	if ephemeralLow() <= high {
		t.Skip("this machine's ephemeral range reaches into 20000–29999: Loopback leaves the picks to the kernel")
	}
	// Hold most of the range; whatever Loopback returns must be one of the few left.
	var held []net.Listener
	t.Cleanup(func() {
		for _, l := range held {
			_ = l.Close()
		}
	})
	free := map[int]bool{}
	for port := low; port <= high; port++ {
		if port%100 == 7 {
			free[port] = true
			continue
		}
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			held = append(held, l)
		}
	}
	for range 3 {
		port, err := One()
		if err != nil {
			require.ErrorContains(t, err, "no free port") // 200 draws may all hit held ports
			continue
		}
		require.True(t, free[port], "returned port %d, which this test holds", port)
	}
}
