// Package hostfstest holds what tests of confined host-file access share: a worker that keeps
// swapping a directory for a symlink, the race every confined open must survive.
package hostfstest

import (
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// SwapWithSymlink keeps replacing the directory dir by a symlink to target and back (holding the
// link for pause each time) until the returned stop is called; stop waits for the swapper and
// returns how many swaps it made, so a test can require that the race really ran.
func SwapWithSymlink(t testing.TB, dir, target string, pause time.Duration) (stop func() int64) {
	t.Helper()
	var stopped atomic.Bool
	var swaps atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stopped.Load() {
			if os.Rename(dir, dir+".real") != nil {
				continue
			}
			_ = os.Symlink(target, dir) // a failed swap only makes this round a no-op
			swaps.Add(1)
			if pause > 0 {
				time.Sleep(pause)
			}
			_ = os.Remove(dir)
			_ = os.Rename(dir+".real", dir)
		}
	}()
	var once sync.Once
	return func() int64 {
		once.Do(func() { stopped.Store(true); wg.Wait() })
		return swaps.Load()
	}
}
