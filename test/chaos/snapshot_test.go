package chaos

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const switching = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"

// wsFrame is an unmasked text frame carrying payload, as a websocket server sends.
func wsFrame(payload []byte) []byte {
	n := len(payload)
	var h []byte
	switch {
	case n < 126:
		h = []byte{0x81, byte(n)}
	case n < 1<<16:
		h = []byte{0x81, 126, byte(n >> 8), byte(n)}
	default:
		h = []byte{0x81, 127, 0, 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	return append(h, payload...)
}

func TestFirstFrameEndFindsTheFrameAfterTheHandshake(t *testing.T) {
	for _, size := range []int{0, 5, 125, 126, 300, 70000} {
		first := wsFrame(bytes.Repeat([]byte("a"), size))
		stream := append(append([]byte(switching), first...), wsFrame([]byte("second"))...)
		end := len(switching) + len(first)
		require.Equal(t, end, firstFrameEnd(stream), "payload of %d bytes", size)
		// Every cut before the frame's end needs more.
		for _, cut := range []int{0, 5, len(switching) - 1, len(switching), len(switching) + 1, end - 1} {
			require.Equal(t, 0, firstFrameEnd(stream[:cut]), "payload of %d bytes cut at %d", size, cut)
		}
	}
	require.Equal(t, -1, firstFrameEnd([]byte("HTTP/1.1 503 Service Unavailable\r\n\r\nnot ready")))
	require.Equal(t, -1, firstFrameEnd([]byte("HTTP/1.1 403 Forb")), "refused before the head ends")
}

func TestClassifySnapshotNeedsAStartWithoutAnEnd(t *testing.T) {
	const node = "edge-node-1"
	connected := `I1205 21:50:00.000001  123 hub.go:320] "LC connected" node="edge-node-1" resources=9` + "\n"
	acked := `I1205 21:50:00.000900  123 connection.go:412] "Snapshot acknowledged" node="edge-node-1"` + "\n"
	otherNode := `I1205 21:50:00.000002  123 hub.go:320] "LC connected" node="edge-node-10" resources=9` + "\n"
	otherAck := `I1205 21:50:00.000003  123 connection.go:412] "Snapshot acknowledged" node="edge-node-10"` + "\n"
	applied := `I1205 21:50:00.000800  77 apply.go:83] "Snapshot from GM applied" resources=9 pruned=0` + "\n"

	cases := []struct {
		name        string
		gm          []string
		lc          string
		interrupted bool
		want        snapshotEvidence
	}{
		{"cut inside", []string{connected, ""}, "", true, snapshotEvidence{started: true}},
		{"on the standby's log", []string{"", connected}, "", true, snapshotEvidence{started: true}},
		{"GM had the ack", []string{connected + acked, ""}, "", false, snapshotEvidence{started: true, acked: true}},
		{"the LC had applied it", []string{connected, ""}, applied, false, snapshotEvidence{started: true, applied: true}},
		{"no start: another node only", []string{otherNode + otherAck, ""}, "", false, snapshotEvidence{}},
		{"an ack of an earlier connection does not end this one", []string{acked + connected, ""}, "", true, snapshotEvidence{started: true}},
		{"another node's ack", []string{connected + otherAck, ""}, "", true, snapshotEvidence{started: true}},
	}
	for _, tc := range cases {
		gm := make([][]byte, len(tc.gm))
		for i, s := range tc.gm {
			gm[i] = []byte(s)
		}
		ev := classifySnapshot(node, gm, []byte(tc.lc))
		require.Equal(t, tc.want, ev, tc.name)
		require.Equal(t, tc.interrupted, ev.interrupted(), tc.name)
	}
}

func TestAfterHealTellsTheHeldConnectionFromANewOne(t *testing.T) {
	applied := `"Snapshot from GM applied" resources=9` + "\n"
	connected := `"Connected to GM"` + "\n"
	require.Equal(t, "same", afterHeal([]byte("x\n"+applied+connected+applied)))
	require.Equal(t, "new", afterHeal([]byte(connected+applied)))
	require.Equal(t, "", afterHeal([]byte(connected)))
}

// The relay lets GM's handshake answer and first frame reach the node, holds the rest until
// Release, and ResetFrom ends the node's connection.
func TestRelayHoldsASnapshotAfterItsFirstFrame(t *testing.T) {
	gm, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = gm.Close() }()
	first, rest := wsFrame([]byte("resource one")), append(wsFrame([]byte("resource two")), wsFrame([]byte("sync"))...)
	go func() {
		for {
			c, err := gm.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				buf := make([]byte, 1024)
				if _, err := c.Read(buf); err != nil { // the upgrade request
					return
				}
				// One write: the hold must split it.
				_, _ = c.Write(append(append([]byte(switching), first...), rest...))
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	r, err := NewRelay(func(context.Context) (string, error) { return gm.Addr().String(), nil })
	require.NoError(t, err)
	defer r.Close()

	dial := func() net.Conn {
		c, err := net.Dial("tcp", r.Addr())
		require.NoError(t, err)
		_, err = c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		require.NoError(t, err)
		return c
	}
	old := dial()
	require.Equal(t, 0, r.ResetFrom("127.0.0.2"), "another host's connections stay")
	_, err = io.ReadFull(old, make([]byte, len(switching)+len(first)+len(rest)))
	require.NoError(t, err, "without a hold everything passes")

	hold := r.HoldSnapshot("127.0.0.1")
	require.GreaterOrEqual(t, r.ResetFrom("127.0.0.1"), 1)
	require.NoError(t, old.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = old.Read(make([]byte, 1))
	require.Error(t, err, "the reset connection ends")

	c := dial()
	defer func() { _ = c.Close() }()
	select {
	case <-hold.Started():
	case <-time.After(5 * time.Second):
		t.Fatal("the hold did not fire")
	}
	require.Equal(t, len(switching)+len(first), hold.Forwarded())
	got := make([]byte, len(switching)+len(first))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, switching+string(first), string(got))
	require.NoError(t, c.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, err = c.Read(make([]byte, 1))
	var netErr net.Error
	require.ErrorAs(t, err, &netErr, "nothing more passes while held")
	require.True(t, netErr.Timeout())

	r.Release(hold)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	got = make([]byte, len(rest))
	_, err = io.ReadFull(c, got)
	require.NoError(t, err)
	require.Equal(t, rest, got, "the rest follows the release")
}
