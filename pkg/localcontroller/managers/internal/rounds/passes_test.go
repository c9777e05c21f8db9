package rounds

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRunPassesRepeatsUntilTheContextEnds: pass runs again after its period, after follows each
// pass, and RunPasses returns once ctx ends, even in the middle of a long wait.
func TestRunPassesRepeatsUntilTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	passes, afters := 0, 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		RunPasses(ctx, func(context.Context) time.Duration {
			passes++
			if passes == 3 {
				return time.Hour // the third wait is cut short by cancel
			}
			return time.Millisecond
		}, func() {
			afters++
			if afters == 3 {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("RunPasses did not return after its context ended")
	}
	require.Equal(t, 3, passes)
	require.Equal(t, 3, afters)
}
