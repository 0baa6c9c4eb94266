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

// TestItems: every item is handed out exactly once, and a worker index never runs two items at
// once (each worker may own scratch memory).
func TestItems(t *testing.T) {
	for _, tc := range []struct{ n, workers int }{{0, 4}, {1, 4}, {5, 1}, {8, 16}, {8, 3}, {1000, 7}} {
		seen := make([]int32, tc.n)
		busy := make([]int32, max(tc.workers, 1))
		Items(tc.n, tc.workers, func(w, i int) {
			if w < 0 || w >= max(tc.workers, 1) {
				t.Errorf("n %d workers %d: worker index %d", tc.n, tc.workers, w)
				return
			}
			if atomic.AddInt32(&busy[w], 1) != 1 {
				t.Errorf("n %d workers %d: worker %d runs two items at once", tc.n, tc.workers, w)
			}
			atomic.AddInt32(&seen[i], 1)
			atomic.AddInt32(&busy[w], -1)
		})
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("n %d workers %d: item %d handed out %d times", tc.n, tc.workers, i, c)
			}
		}
	}
}
