package messagelayer

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

var _ runtime.NodeChannel = (*NodeStates)(nil)

func TestNodeStatesTrackTheCurrentConnection(t *testing.T) {
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s := NewNodeStates(func() time.Time { return clock })
	var mu sync.Mutex
	var changes []string
	s.OnChange(func(node string) {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, node)
	})

	_, ok := s.ConnectedSince("edge-1")
	require.False(t, ok, "never connected")

	first, second := new(int), new(int)
	s.Connected("edge-1", first)
	since, ok := s.ConnectedSince("edge-1")
	require.True(t, ok)
	require.Equal(t, clock, since)

	// A reconnect replaces the connection before the old one ends: a new period starts, and the
	// old connection's end does not disconnect the node.
	clock = clock.Add(time.Minute)
	s.Connected("edge-1", second)
	s.Disconnected("edge-1", first)
	since, ok = s.ConnectedSince("edge-1")
	require.True(t, ok)
	require.Equal(t, clock, since)
	require.Equal(t, []string{"edge-1"}, s.ConnectedNodes())

	s.Disconnected("edge-1", second)
	_, ok = s.ConnectedSince("edge-1")
	require.False(t, ok)
	require.Empty(t, s.ConnectedNodes())
	require.Equal(t, []string{"edge-1", "edge-1", "edge-1"}, changes, "connect, reconnect, disconnect; not the replaced end")
}
