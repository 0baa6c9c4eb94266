// Package parallel splits work over goroutines: For (contiguous index ranges) is what the CPU
// engine, the CUDA engine's host side and the exporter share; Items (one item at a time) is the
// rollout engine's, for a few rows of uneven cost.
package parallel

import (
	"sync"
	"sync/atomic"
)

// For runs fn over [0, n) split into at most `workers` contiguous ranges, each on its own
// goroutine, and returns when all are done. With one worker, or fewer than two items per worker,
// fn runs once over the whole range on the caller's goroutine.
func For(n, workers int, fn func(lo, hi int)) {
	if workers <= 1 || n < 2*workers {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	step := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += step {
		hi := min(lo+step, n)
		wg.Add(1)
		go func() { defer wg.Done(); fn(lo, hi) }()
	}
	wg.Wait()
}

// Items runs fn(worker, i) for every i in [0, n), handing the items out one at a time to at most
// `workers` goroutines (worker in [0, workers)), and returns when all are done. It is For for a
// few expensive items of uneven cost (a vocabulary-wide softmax per row): no minimum per worker,
// and the worker index lets each goroutine keep its own scratch. With one worker or one item, fn
// runs on the caller's goroutine.
func Items(n, workers int, fn func(worker, i int)) {
	workers = min(workers, n)
	if workers <= 1 {
		for i := range n {
			fn(0, i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(w, i)
			}
		}()
	}
	wg.Wait()
}
