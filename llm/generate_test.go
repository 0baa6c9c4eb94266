package llm

import (
	"context"
	"math"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vzlocal/vzlocal/llm/testmodel"
)

var bg = context.Background()

func TestGenerateDeterministic(t *testing.T) {
	m := loadTiny(t, "llava", testOptions())
	p := chatPrompt(t, m, "Who is the spy?", testmodel.TestImage(40, 30, 1))
	s := Sampling{Temperature: 1, N: 4, MaxTokens: 10, Seed: 42}
	a, err := m.Generate(bg, p, s)
	require.NoError(t, err)
	b, err := m.Generate(bg, p, s)
	require.NoError(t, err)
	require.Equal(t, a, b, "same seed, same completions")
	require.NotEqual(t, a[0].Tokens, a[1].Tokens, "completions of one call differ")
	for _, c := range a {
		require.Len(t, c.Tokens, len(c.LogProbs))
		require.Equal(t, FinishLength, c.Finish) // 10 tokens, no EOG in these draws
		require.Len(t, c.Tokens, 10)
		require.Equal(t, m.Detokenize(c.Tokens), c.Text)
	}
	s.Seed = 43
	other, err := m.Generate(bg, p, s)
	require.NoError(t, err)
	require.NotEqual(t, a[0].Tokens, other[0].Tokens)

	// A fresh model gives the same completions (nothing depends on what ran before).
	m2 := loadTiny(t, "llava", testOptions())
	p2 := chatPrompt(t, m2, "Who is the spy?", testmodel.TestImage(40, 30, 1))
	s.Seed = 42
	c, err := m2.Generate(bg, p2, s)
	require.NoError(t, err)
	require.Equal(t, a, c)

	greedy, err := m.Generate(bg, p, Sampling{N: 3, MaxTokens: 6})
	require.NoError(t, err)
	for _, g := range greedy {
		require.Equal(t, greedy[0].Tokens, g.Tokens)
		require.Equal(t, make([]float32, len(g.Tokens)), g.LogProbs, "greedy draws from a point mass")
	}
}

func TestFinishReasons(t *testing.T) {
	m := loadTiny(t, "llava", testOptions())
	eog := int32(testmodel.TokenID("<|im_end|>"))
	c := Completion{Tokens: []int32{5, eog}}
	require.True(t, m.finished(&c, Sampling{MaxTokens: 10}))
	require.Equal(t, FinishStop, c.Finish)
	c = Completion{Tokens: []int32{5, 6}}
	require.True(t, m.finished(&c, Sampling{MaxTokens: 2}))
	require.Equal(t, FinishLength, c.Finish)
	c = Completion{Tokens: []int32{5, 6}}
	require.False(t, m.finished(&c, Sampling{MaxTokens: 3}))
}

// logSoftmax64 is the reference: log-softmax of logits/temp in float64.
func logSoftmax64(logits []float32, temp float64) []float64 {
	mx := math.Inf(-1)
	for _, l := range logits {
		mx = max(mx, float64(l)/temp)
	}
	sum := 0.0
	for _, l := range logits {
		sum += math.Exp(float64(l)/temp - mx)
	}
	out := make([]float64, len(logits))
	for i, l := range logits {
		out[i] = float64(l)/temp - mx - math.Log(sum)
	}
	return out
}

// truncatedLogProbs is the reference for top-k/top-p: sort the whole vocabulary, cut,
// renormalise; -Inf for tokens cut off.
func truncatedLogProbs(logits []float32, s Sampling) []float64 {
	lp := logSoftmax64(logits, float64(s.Temperature))
	ids := make([]int, len(lp))
	for i := range ids {
		ids[i] = i
	}
	sort.SliceStable(ids, func(a, b int) bool { return lp[ids[a]] > lp[ids[b]] })
	if s.TopK > 0 && s.TopK < len(ids) {
		ids = ids[:s.TopK]
	}
	mass := 0.0
	for _, id := range ids {
		mass += math.Exp(lp[id])
	}
	if s.TopP > 0 && s.TopP < 1 {
		cum := 0.0
		for j, id := range ids {
			cum += math.Exp(lp[id])
			if cum >= float64(s.TopP)*mass {
				ids = ids[:j+1]
				break
			}
		}
	}
	kept := 0.0
	for _, id := range ids {
		kept += math.Exp(lp[id])
	}
	out := make([]float64, len(lp))
	for i := range out {
		out[i] = math.Inf(-1)
	}
	for _, id := range ids {
		out[id] = lp[id] - math.Log(kept)
	}
	return out
}

func truncatedLogProb(logits []float32, tok int32, s Sampling) float64 {
	return truncatedLogProbs(logits, s)[tok]
}

// The behaviour log-prob returned with each sampled token must be the log-prob of that token
// under the distribution it was drawn from, computed here independently from the logits that
// Logits returns for the same sequence (a separate, single-sequence decode).
const logProbTol = 1e-4

func TestGenerateLogProbsMatchLogits(t *testing.T) {
	m := loadTiny(t, "llava", testOptions())
	p := chatPrompt(t, m, "Describe the image.", testmodel.TestImage(40, 30, 5))
	for _, s := range []Sampling{
		{Temperature: 1, N: 4, MaxTokens: 12, Seed: 1},
		{Temperature: 0.7, N: 4, MaxTokens: 12, Seed: 2},
		{Temperature: 1.3, TopK: 20, N: 4, MaxTokens: 12, Seed: 3},
		{Temperature: 1, TopP: 0.5, N: 4, MaxTokens: 12, Seed: 4},
		{Temperature: 0.9, TopK: 50, TopP: 0.8, N: 4, MaxTokens: 12, Seed: 5},
	} {
		cs, err := m.Generate(bg, p, s)
		require.NoError(t, err)
		worst := 0.0
		for _, c := range cs {
			logits, err := m.Logits(p, c.Tokens)
			require.NoError(t, err)
			for i, tok := range c.Tokens {
				want := truncatedLogProb(logits[len(p.Tokens)-1+i], tok, s)
				require.False(t, math.IsInf(want, -1), "sampled a token outside the kept set")
				worst = max(worst, math.Abs(want-float64(c.LogProbs[i])))
			}
		}
		t.Logf("%+v: max |behaviour log-prob - reference| = %.3g", s, worst)
		require.Less(t, worst, logProbTol)
	}
}

// Score must give back what Generate recorded, and plain log-softmax at temperature 1.
func TestScoreMatchesGenerate(t *testing.T) {
	m := loadTiny(t, "qwen2vl", testOptions())
	p := chatPrompt(t, m, "Which one is different?", testmodel.TestImage(40, 30, 6))
	s := Sampling{Temperature: 0.8, TopK: 40, N: 5, MaxTokens: 9, Seed: 9}
	cs, err := m.Generate(bg, p, s)
	require.NoError(t, err)
	seqs := make([][]int32, len(cs))
	for i, c := range cs {
		seqs[i] = c.Tokens
	}
	seqs = append(seqs, []int32{}, []int32{int32(testmodel.TokenID("a"))})
	scores, err := m.Score(bg, p, seqs, s)
	require.NoError(t, err)
	worst := 0.0
	for i, c := range cs {
		for j := range c.Tokens {
			worst = max(worst, math.Abs(float64(scores[i][j]-c.LogProbs[j])))
		}
	}
	t.Logf("max |Score - Generate| = %.3g", worst)
	require.Less(t, worst, logProbTol)
	require.Empty(t, scores[len(cs)])

	// a long sequence crosses the 64-row output chunks of Score and Logits
	long := make([]int32, 150)
	for i := range long {
		long[i] = int32((i*37 + 11) % 288)
	}
	plain, err := m.Score(bg, p, [][]int32{seqs[0], long}, Sampling{Temperature: 1})
	require.NoError(t, err)
	for k, seq := range [][]int32{seqs[0], long} {
		logits, err := m.Logits(p, seq)
		require.NoError(t, err)
		for j, tok := range seq {
			want := logSoftmax64(logits[len(p.Tokens)-1+j], 1)[tok]
			require.InDelta(t, want, plain[k][j], logProbTol)
		}
	}
}

// G completions decoded together must match the same completions decoded one at a time
// (Parallel 1): the same tokens, and per-token log-probs within logProbTol. Only the batch
// composition differs, which changes llama.cpp's rounding, not the math.
func TestBatchedMatchesSequential(t *testing.T) {
	opts := testOptions()
	batched := loadTiny(t, "qwen2vl", opts)
	opts.Parallel = 1
	sequential := loadTiny(t, "qwen2vl", opts)
	image := testmodel.TestImage(40, 30, 7)
	s := Sampling{Temperature: 1, N: 8, MaxTokens: 16, Seed: 11}
	a, err := batched.Generate(bg, chatPrompt(t, batched, "Describe it.", image), s)
	require.NoError(t, err)
	b, err := sequential.Generate(bg, chatPrompt(t, sequential, "Describe it.", image), s)
	require.NoError(t, err)
	worst := 0.0
	for i := range a {
		require.Equal(t, b[i].Tokens, a[i].Tokens, "completion %d", i)
		for j := range a[i].LogProbs {
			worst = max(worst, math.Abs(float64(a[i].LogProbs[j]-b[i].LogProbs[j])))
		}
	}
	t.Logf("G=8 batched vs sequential: max |Δ log-prob| = %.3g", worst)
	require.Less(t, worst, logProbTol)
}

// N larger than Parallel runs in waves; completion j still draws from PCG(seed, j).
func TestGenerateWaves(t *testing.T) {
	opts := testOptions()
	opts.Parallel = 3
	m := loadTiny(t, "llava", opts)
	p := chatPrompt(t, m, "Describe it.", testmodel.TestImage(20, 20, 8))
	s := Sampling{Temperature: 1, N: 7, MaxTokens: 5, Seed: 3}
	all, err := m.Generate(bg, p, s)
	require.NoError(t, err)
	require.Len(t, all, 7)
	s.N = 2
	firstTwo, err := m.Generate(bg, p, s)
	require.NoError(t, err)
	require.Equal(t, all[:2], firstTwo)

	_, err = m.Generate(bg, p, Sampling{N: 1, MaxTokens: 5000})
	require.ErrorContains(t, err, "do not fit the context")
}

func TestOptionsChecked(t *testing.T) {
	f := tinyModelFiles(t, "llava")
	for _, o := range []Options{{Parallel: 300}, {Parallel: 64, BatchSize: 32}, {ContextSize: 8}} {
		o.Threads = 1
		_, err := Load(f.Text, f.MMProj, o)
		require.ErrorContains(t, err, "llm: Options.")
	}
}

func TestGenerateCancelled(t *testing.T) {
	m := loadTiny(t, "llava", testOptions())
	p := chatPrompt(t, m, "Go.", testmodel.TestImage(16, 16, 1))
	ctx, cancel := context.WithCancel(bg)
	cancel()
	_, err := m.Generate(ctx, p, Sampling{Temperature: 1, N: 2, MaxTokens: 50})
	require.ErrorIs(t, err, context.Canceled)
	// the model is still usable afterwards
	cs, err := m.Generate(bg, p, Sampling{Temperature: 1, N: 2, MaxTokens: 5})
	require.NoError(t, err)
	require.Len(t, cs, 2)
}
