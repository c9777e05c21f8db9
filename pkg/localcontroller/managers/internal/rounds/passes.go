package rounds

import (
	"context"
	"time"
)

// RunPasses is a learning job's loop: it calls pass, then after (when not nil; tests use it to
// know a pass ended), then waits the period pass returned, until ctx ends.
func RunPasses(ctx context.Context, pass func(context.Context) time.Duration, after func()) {
	for {
		period := pass(ctx)
		if after != nil {
			after()
		}
		timer := time.NewTimer(period)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}
