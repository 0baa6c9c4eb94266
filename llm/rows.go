package llm

import (
	"runtime"

	"github.com/vzlocal/vzlocal/internal/parallel"
)

// minParallelVocab is the vocabulary below which rows are sampled on the caller's goroutine: a
// row then costs microseconds, about what handing it to another goroutine does.
const minParallelVocab = 4096

// rowSampler works through the logits rows of one llama_decode (one per completion being sampled,
// or one per token being scored) on several cores. A row's softmax over a 152k vocabulary takes
// 0.2-0.3 ms: row after row, the 8 completions of a GRPO group cost 1.4-2 ms of host time per
// decode step, and a 64-row scoring batch 13-18 ms (BenchmarkSampleRows), while the GPU waits. Each goroutine has its own distribution buffer; rows never share state, and each
// completion keeps its own random stream, so the results are those of the serial order.
type rowSampler struct {
	workers int // 0 = GOMAXPROCS
	dists   []*distribution
}

// each runs fn(d, i) for every row i in [0, n) of a vocabulary of nvocab logits.
func (r *rowSampler) each(n, nvocab int, fn func(d *distribution, i int)) {
	workers := r.workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if nvocab < minParallelVocab {
		workers = 1
	}
	workers = max(1, min(workers, n))
	for len(r.dists) < workers {
		r.dists = append(r.dists, &distribution{})
	}
	parallel.Items(n, workers, func(w, i int) { fn(r.dists[w], i) })
}
