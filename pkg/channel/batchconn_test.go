package channel

import (
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// recordingConn records each write the BatchConn makes.
type recordingConn struct {
	net.Conn
	writes []string
}

func (r *recordingConn) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func TestBatchConnGathersHeldWritesUntilFlush(t *testing.T) {
	rec := &recordingConn{}
	b := NewBatchConn(rec)

	_, err := b.Write([]byte("a"))
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, rec.writes, "writes outside a batch go straight through")

	b.Hold()
	for _, s := range []string{"b", "c", "d"} {
		n, err := b.Write([]byte(s))
		require.NoError(t, err)
		require.Equal(t, 1, n)
	}
	require.Equal(t, []string{"a"}, rec.writes, "held writes wait")
	require.NoError(t, b.Flush())
	require.Equal(t, []string{"a", "bcd"}, rec.writes)
	require.NoError(t, b.Flush())
	require.Len(t, rec.writes, 2, "an empty flush writes nothing")

	_, err = b.Write([]byte("e"))
	require.NoError(t, err)
	require.Equal(t, "e", rec.writes[2], "a flush ends the batch")
}

func TestBatchConnWritesWhenTheBatchIsFull(t *testing.T) {
	rec := &recordingConn{}
	b := NewBatchConn(rec)
	b.Hold()
	half := strings.Repeat("x", BatchLimit/2+1)
	for range 3 {
		_, err := b.Write([]byte(half))
		require.NoError(t, err)
	}
	require.Len(t, rec.writes, 2, "each write that would overflow the batch sends what was gathered first")
	big := strings.Repeat("y", BatchLimit+1)
	_, err := b.Write([]byte(big))
	require.NoError(t, err)
	require.Equal(t, []string{half, half, half, big}, rec.writes, "a write larger than the batch goes out on its own, in order")
	require.NoError(t, b.Flush())
	require.Len(t, rec.writes, 4)
}
