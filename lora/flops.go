package lora

import (
	"fmt"
	"time"
)

// FLOPs counts the floating-point operations (multiply-adds as 2) of the matrix products that
// LogProbs (backward=false) or Backward (backward=true) run for a batch, including the recomputed
// forward when Options.Recompute is set and the masked half of the attention scores, which the
// BLAS calls compute. Benchmarks divide it by time for GFLOP/s.
func (e *CPU) FLOPs(b *Batch, backward bool) (int64, error) {
	pk, err := pack(b, e.m.Cfg, nil)
	if err != nil {
		return 0, fmt.Errorf("flops: %w", err)
	}
	c := e.m.Cfg
	n := int64(pk.n)
	var linFwd, loraFwd, loraBwd int64
	for _, t := range Targets {
		in, out, _ := c.LinearShape(t)
		linFwd += 2 * n * int64(in) * int64(out)
		if e.ad != nil && e.ad.Lookup(0, t) != nil {
			r := int64(e.ad.Rank)
			loraFwd += 2 * n * r * int64(in+out)
			loraBwd += 4 * n * r * int64(in+out) // dy B, dB, dA, dx
		}
	}
	var attFwd int64 // scores and P V over the keys each query block computes (attnBlocks)
	newAttnDims(c, pk, 1, false).attnBlocks(pk.segs, func(sg segment, a, b, kb int) {
		attFwd += 4 * int64(b-a) * int64(sg.prefix+kb) * int64(c.HeadDim) * int64(c.NHead)
	})
	rows := map[int]bool{}
	for _, t := range pk.targets {
		rows[t.row] = true
	}
	head := 2 * int64(len(rows)) * int64(c.NVocab) * int64(c.NEmbd)
	L := int64(c.NLayer)
	fwd := L*(linFwd+loraFwd+attFwd) + head
	if !backward || e.ad == nil {
		return fwd, nil
	}
	bwd := L*(linFwd+loraBwd+attFwd*5/2) + head // dx products; attention: recomputed scores + 4 products
	if e.recomputes(pk) {
		bwd += L * (linFwd + loraFwd + attFwd)
	}
	return fwd + bwd, nil
}

// MeasureSgemm times OpenBLAS sgemm (row-major, C = A B^T as the engine's linear layers use it) of
// an m x k by k x n product at the current thread count and returns the best GFLOP/s of reps runs:
// the reference that benchmarks compare the engine's throughput with.
func MeasureSgemm(m, n, k, reps int) float64 {
	a, b, c := make([]float32, m*k), make([]float32, n*k), make([]float32, m*n)
	for i := range a {
		a[i] = float32(i%7) * 0.1
	}
	for i := range b {
		b[i] = float32(i%5) * 0.1
	}
	best := 0.0
	for range reps {
		t0 := time.Now()
		sgemm(false, true, m, n, k, 1, a, k, b, k, 0, c, n)
		if g := 2 * float64(m) * float64(n) * float64(k) / time.Since(t0).Seconds() / 1e9; g > best {
			best = g
		}
	}
	return best
}
