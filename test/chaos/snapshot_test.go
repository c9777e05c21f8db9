package chaos

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

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

func TestAfterHealTellsTheSameConnectionFromANewOne(t *testing.T) {
	applied := `"Snapshot from GM applied" resources=9` + "\n"
	connected := `"Connected to GM"` + "\n"
	require.Equal(t, "same", afterHeal([]byte("x\n"+applied+connected+applied)))
	require.Equal(t, "new", afterHeal([]byte(connected+applied)))
	require.Equal(t, "", afterHeal([]byte(connected)))
}

// ResetFrom ends the connections of one edge host only; the LC's next connection passes.
func TestRelayResetFromEndsOneHostsConnections(t *testing.T) {
	gm, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = gm.Close() }()
	go func() {
		for {
			c, err := gm.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				_, _ = io.Copy(c, c) // echo
			}()
		}
	}()
	r, err := NewRelay(func(context.Context) (string, error) { return gm.Addr().String(), nil })
	require.NoError(t, err)
	defer r.Close()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", r.Addr())
		require.NoError(t, err)
		_, err = c.Write([]byte("ping"))
		require.NoError(t, err)
		_, err = io.ReadFull(c, make([]byte, 4))
		require.NoError(t, err, "the relay forwards")
		return c
	}
	old := dial()
	require.Equal(t, 0, r.ResetFrom("127.0.0.2"), "another host's connections stay")
	_, err = old.Write([]byte("ping"))
	require.NoError(t, err)
	_, err = io.ReadFull(old, make([]byte, 4))
	require.NoError(t, err)

	require.Equal(t, 2, r.ResetFrom("127.0.0.1"), "the edge end, and here the cloud end too (GM on the same host)")
	require.NoError(t, old.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = old.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the reset connection ends")
	_ = old.Close()
	c := dial()
	_ = c.Close()
}
