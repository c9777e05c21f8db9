package chaos

import (
	"bufio"
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// echoServer answers each line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, r *bufio.Reader, msg string) error {
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return err
	}
	_, err := r.ReadString('\n')
	return err
}

// A reset partition closes live connections and refuses new ones; a blackhole accepts but
// answers nothing; Heal restores the link for new connections.
func TestRelayPartitions(t *testing.T) {
	backend := echoServer(t)
	relay, err := NewRelay(func(context.Context) (string, error) { return backend, nil })
	require.NoError(t, err)
	t.Cleanup(relay.Close)
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", relay.Addr())
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c, bufio.NewReader(c)
	}

	c, r := dial()
	require.NoError(t, roundTrip(c, r, "hello"))

	relay.Partition(Reset)
	require.Error(t, roundTrip(c, r, "cut"), "a live connection survived a reset partition")
	c2, r2 := dial()
	require.Error(t, roundTrip(c2, r2, "refused"), "a new connection got through a reset partition")
	relay.Heal()
	c3, r3 := dial()
	require.NoError(t, roundTrip(c3, r3, "back"))

	relay.Partition(Blackhole)
	err = roundTrip(c3, r3, "dropped")
	var netErr net.Error
	require.ErrorAs(t, err, &netErr, "a blackholed connection answered")
	require.True(t, netErr.Timeout(), "a blackhole must look like silence, got %v", err)
	c4, r4 := dial()
	err = roundTrip(c4, r4, "silence")
	require.ErrorAs(t, err, &netErr)
	require.True(t, netErr.Timeout(), "a new connection in a blackhole must see silence, got %v", err)
	relay.Heal()
	c5, r5 := dial()
	require.NoError(t, roundTrip(c5, r5, "healed"))
}
