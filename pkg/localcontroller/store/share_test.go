package store

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// share is exact and does not overflow for a limit near the top of the range: a huge
// --outbox-max-bytes must give a class a share of it, not a wrapped-around small number.
func TestShareDoesNotOverflow(t *testing.T) {
	for _, tc := range []struct{ limit, percent, want uint64 }{
		{100, 50, 50},
		{99, 25, 24},
		{64 << 20, 25, 16 << 20},
		{math.MaxInt64, 50, math.MaxInt64 / 2},
		{math.MaxInt64, 25, math.MaxInt64 / 4},
		{math.MaxUint64, 25, math.MaxUint64 / 4},
		{math.MaxUint64, 100, math.MaxUint64},
		{math.MaxUint64, 0, 0},
	} {
		require.Equal(t, tc.want, share(tc.limit, tc.percent), "%d%% of %d", tc.percent, tc.limit)
	}

	st, err := Open(filepath.Join(t.TempDir(), "lc.db"), Options{MaxOutboxBytes: math.MaxInt64})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, st.Close()) })
	stats, err := st.OutboxStats()
	require.NoError(t, err)
	for _, class := range stats.Classes {
		switch class.Class {
		case ClassWorkerEvent:
			require.Equal(t, uint64(math.MaxInt64/2), class.LimitBytes)
		case ClassWorkerMetrics:
			require.Equal(t, uint64(math.MaxInt64/4), class.LimitBytes)
		}
	}
}
