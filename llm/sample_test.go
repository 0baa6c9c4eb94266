package llm

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// The sampler's truncated distributions against a brute-force reference on random logits,
// including a large vocabulary where the threshold search matters.
func TestDistributionMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, vocab := range []int{5, 324, 20000} {
		logits := make([]float32, vocab)
		for i := range logits {
			logits[i] = float32(rng.NormFloat64() * 3)
		}
		for _, s := range []Sampling{
			{Temperature: 1}, {Temperature: 0.5, TopK: 3}, {Temperature: 2, TopP: 0.9},
			{Temperature: 1, TopK: 100, TopP: 0.3}, {Temperature: 1, TopP: 0.999}, {Temperature: 1, TopK: vocab + 5},
		} {
			d := &distribution{}
			ref := truncatedLogProbs(logits, s)
			for range 20 {
				tok, lp := sampleToken(d, logits, s, rng)
				want := ref[tok]
				require.InDelta(t, want, float64(lp), 1e-5, "vocab %d %+v token %d", vocab, s, tok)
			}
			// every token's log-prob, kept or not
			for tok := range min(vocab, 40) {
				got := float64(tokenLogProb(d, logits, int32(tok), s))
				want := ref[tok]
				if math.IsInf(want, -1) {
					require.True(t, math.IsInf(got, -1), "vocab %d %+v token %d: %v", vocab, s, tok, got)
				} else {
					require.InDelta(t, want, got, 1e-5)
				}
			}
		}
	}
}

// Draws follow the distribution: frequencies of a 4-token softmax within 5 standard errors.
func TestSamplerFrequencies(t *testing.T) {
	logits := []float32{0, 1, 2, -1}
	s := Sampling{Temperature: 1}
	ref := logSoftmax64(logits, 1)
	rng := rand.New(rand.NewPCG(5, 6))
	counts := make([]int, len(logits))
	const n = 40000
	d := &distribution{}
	for range n {
		tok, _ := sampleToken(d, logits, s, rng)
		counts[tok]++
	}
	for i, c := range counts {
		p := math.Exp(ref[i])
		se := math.Sqrt(p * (1 - p) / n)
		require.InDelta(t, p, float64(c)/n, 5*se, "token %d", i)
	}
}
