package llm

/*
#include "vz.h"
*/
import "C"

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"unsafe"
)

// Sampling says how completions are drawn. Sampling happens in Go from the full logits, so the
// log-prob recorded for each token is exactly that of the distribution it was drawn from: the
// softmax of logits/Temperature, restricted to the top-k / top-p set and renormalised when those
// are on.
type Sampling struct {
	Temperature float32 // 0 = greedy (each token then has log-prob 0: a point mass)
	TopK        int     // keep the k most likely tokens; 0 = off
	TopP        float32 // keep the smallest most-likely set with mass >= TopP; 0 or >= 1 = off
	MaxTokens   int     // most tokens per completion; 0 = 256
	N           int     // completions; 0 = 1
	Seed        uint64  // 0 = Options.Seed; completion j draws from PCG(Seed, j)
}

func (s Sampling) withDefaults(seed uint64) Sampling {
	if s.MaxTokens <= 0 {
		s.MaxTokens = 256
	}
	if s.N <= 0 {
		s.N = 1
	}
	if s.Seed == 0 {
		s.Seed = seed
	}
	return s
}

// check rejects settings that would make every log-prob NaN.
func (s Sampling) check() error {
	t := float64(s.Temperature)
	if math.IsNaN(t) || math.IsInf(t, 0) || (t > 0 && math.IsInf(float64(1/s.Temperature), 0)) {
		return fmt.Errorf("llm: Sampling.Temperature %v is not usable (0 = greedy, or a positive number)", s.Temperature)
	}
	if math.IsNaN(float64(s.TopP)) {
		return fmt.Errorf("llm: Sampling.TopP is NaN")
	}
	return nil
}

func (s Sampling) truncates() bool { return s.TopK > 0 || (s.TopP > 0 && s.TopP < 1) }

// distribution is the sampling distribution over one logits vector: weights w (unnormalised
// probabilities exp((l-max)/T)) over the kept tokens, in the order they are sampled.
type distribution struct {
	w    []float32
	keep []int32 // kept token ids, most likely first; nil = the whole vocabulary in id order
	sum  float64 // sum of w over the kept tokens
}

// build computes the distribution of logits under s (Temperature > 0).
func (d *distribution) build(logits []float32, s Sampling) {
	if cap(d.w) < len(logits) {
		d.w = make([]float32, len(logits))
	}
	d.w = d.w[:len(logits)]
	// exp(l/T - max) with ggml's SIMD exp: about 10x faster than math.Exp on a 150k vocabulary
	total := float64(C.vz_exp_sum(C.int32_t(len(logits)), (*C.float)(unsafe.Pointer(&d.w[0])),
		(*C.float)(unsafe.Pointer(&logits[0])), C.float(1/s.Temperature)))
	d.keep, d.sum = nil, total
	if !s.truncates() {
		return
	}
	// The kept set is a prefix of the tokens in the order (weight desc, id asc). Sorting the
	// whole vocabulary per token is slow (150k entries), so the prefix is found by selection,
	// in expected linear time; only the kept tokens' order among themselves stays arbitrary
	// (deterministic), which changes nothing about the distribution.
	if cap(d.keep) < len(d.w) {
		d.keep = make([]int32, len(d.w))
	}
	// Most of a vocabulary weighs next to nothing. If the tokens above a small threshold already
	// hold k tokens (or the top-p mass), the prefix lies among them: every lighter token comes
	// after every one of them in the order.
	const thr = 1e-4 // relative to the heaviest token, whose weight is 1
	d.keep = d.keep[:0]
	mass := 0.0
	for i, w := range d.w {
		if w >= thr {
			d.keep = append(d.keep, int32(i))
			mass += float64(w)
		}
	}
	if (s.TopK > 0 && len(d.keep) < s.TopK) || (s.TopK <= 0 && mass < float64(s.TopP)*total) {
		d.keep = d.keep[:len(d.w)]
		for i := range d.keep {
			d.keep[i] = int32(i)
		}
	}
	if s.TopK > 0 && s.TopK < len(d.keep) {
		d.selectPrefix(d.keep, func(n int, _ float64) bool { return n >= s.TopK })
		d.keep = d.keep[:s.TopK]
	}
	if s.TopP > 0 && s.TopP < 1 {
		// top-p after top-k is measured against the mass of the top-k set (renormalised)
		base := total
		if s.TopK > 0 {
			base = d.mass(d.keep)
		}
		need := float64(s.TopP) * base
		n := d.selectPrefix(d.keep, func(_ int, mass float64) bool { return mass >= need })
		d.keep = d.keep[:n]
	}
	d.sum = d.mass(d.keep)
}

// before is the order of the kept prefix: heavier first, lower id first among equals.
func (d *distribution) before(a, b int32) bool {
	return d.w[a] > d.w[b] || (d.w[a] == d.w[b] && a < b)
}

func (d *distribution) mass(ids []int32) float64 {
	m := 0.0
	for _, id := range ids {
		m += float64(d.w[id])
	}
	return m
}

// selectPrefix reorders ids so that its shortest prefix in the order `before` for which
// enough(length, mass) holds comes first, and returns that length (len(ids) if none does). It is
// a quickselect: partition around a pivot, keep the side that holds the answer.
func (d *distribution) selectPrefix(ids []int32, enough func(n int, mass float64) bool) int {
	lo, hi := 0, len(ids) // ids[:lo] are in the prefix (mass acc); the answer ends in (lo, hi]
	acc := 0.0
	for hi-lo > 16 {
		// median of three as the pivot, moved to hi-1
		a, b, c := lo, lo+(hi-lo)/2, hi-1
		if d.before(ids[b], ids[a]) {
			ids[a], ids[b] = ids[b], ids[a]
		}
		if d.before(ids[c], ids[b]) {
			ids[b], ids[c] = ids[c], ids[b]
			if d.before(ids[b], ids[a]) {
				ids[a], ids[b] = ids[b], ids[a]
			}
		}
		ids[b], ids[hi-1] = ids[hi-1], ids[b]
		pivot := ids[hi-1]
		p := lo
		for i := lo; i < hi-1; i++ {
			if d.before(ids[i], pivot) {
				ids[i], ids[p] = ids[p], ids[i]
				p++
			}
		}
		ids[p], ids[hi-1] = ids[hi-1], ids[p]
		// ids[lo:p] precede the pivot, ids[p] is the pivot, ids[p+1:hi] follow it
		m := d.mass(ids[lo:p])
		switch {
		case enough(p, acc+m):
			hi = p
		case enough(p+1, acc+m+float64(d.w[pivot])):
			return p + 1
		default:
			acc += m + float64(d.w[pivot])
			lo = p + 1
		}
	}
	rest := ids[lo:hi]
	slices.SortFunc(rest, func(a, b int32) int {
		switch {
		case a == b:
			return 0
		case d.before(a, b):
			return -1
		}
		return 1
	})
	for i, id := range rest {
		acc += float64(d.w[id])
		if enough(lo+i+1, acc) {
			return lo + i + 1
		}
	}
	return hi
}

// draw picks a token with probability w/sum using u in [0, 1).
func (d *distribution) draw(u float64) int32 {
	target := u * d.sum
	acc := 0.0
	if d.keep == nil {
		last := int32(0)
		for i, w := range d.w {
			if w == 0 {
				continue
			}
			acc += float64(w)
			last = int32(i)
			if acc > target {
				return int32(i)
			}
		}
		return last
	}
	for _, id := range d.keep {
		acc += float64(d.w[id])
		if acc > target {
			return id
		}
	}
	return d.keep[len(d.keep)-1]
}

// logProb is the log-probability of tok under the distribution (-Inf if not kept).
func (d *distribution) logProb(tok int32) float64 {
	if d.keep != nil && !slices.Contains(d.keep, tok) {
		return math.Inf(-1)
	}
	return math.Log(float64(d.w[tok]) / d.sum)
}

// sampleToken draws the next token from logits under s and returns it with its log-prob.
func sampleToken(d *distribution, logits []float32, s Sampling, rng *rand.Rand) (int32, float32) {
	if s.Temperature <= 0 {
		return argmax(logits), 0
	}
	d.build(logits, s)
	tok := d.draw(rng.Float64())
	return tok, float32(d.logProb(tok))
}

// tokenLogProb is the log-prob of tok under the distribution Generate samples from with s.
func tokenLogProb(d *distribution, logits []float32, tok int32, s Sampling) float32 {
	if s.Temperature <= 0 {
		if argmax(logits) == tok {
			return 0
		}
		return float32(math.Inf(-1))
	}
	d.build(logits, s)
	return float32(d.logProb(tok))
}

// argmax returns the first index of the largest logit.
func argmax(logits []float32) int32 {
	best := 0
	for i, l := range logits {
		if l > logits[best] {
			best = i
		}
	}
	return int32(best)
}
