package managers

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoopGroup(t *testing.T) {
	var g LoopGroup
	require.Nil(t, g.Go(func(context.Context) {}), "no loop before Run begins")

	ctx, cancel := context.WithCancel(context.Background())
	require.True(t, g.Begin(ctx))
	require.False(t, g.Begin(ctx), "Run twice")

	var running atomic.Int32
	loop := func(ctx context.Context) {
		running.Add(1)
		<-ctx.Done()
		running.Add(-1)
	}
	first, second := g.Go(loop), g.Go(loop)
	require.NotNil(t, first)
	first.Stop()
	first.Stop() // idempotent
	(*Loop)(nil).Stop()

	ended := make(chan struct{})
	go func() { g.End(); close(ended) }()
	cancel()
	<-ended
	require.Zero(t, running.Load(), "End returned before its loops")
	require.Nil(t, g.Go(loop), "no loop after Run ended")
	second.Stop()
}
