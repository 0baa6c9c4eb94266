package parallel

import (
	"sync/atomic"
	"testing"
)

// TestFor: every index is handed out exactly once, in serial and parallel splits.
func TestFor(t *testing.T) {
	for _, tc := range []struct{ n, workers int }{{0, 4}, {5, 1}, {5, 4}, {4096, 14}, {7, 2}, {1000, 3}} {
		seen := make([]int32, tc.n)
		For(tc.n, tc.workers, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				atomic.AddInt32(&seen[i], 1)
			}
		})
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("n %d workers %d: index %d handed out %d times", tc.n, tc.workers, i, c)
			}
		}
	}
}
