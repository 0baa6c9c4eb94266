// Package parallel splits index ranges over goroutines: the one helper the CPU engine, the CUDA
// engine's host side and the exporter share.
package parallel

import "sync"

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
