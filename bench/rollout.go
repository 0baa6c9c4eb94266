package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// Rollout is a loaded model with one game-like prompt, timing rounds of G completions. Prompt
// evaluation is excluded: the prompt is evaluated once and cached, as in training where the G
// completions of a game state share it. `vzlocal bench rollout` and BenchmarkRollout use it.
type Rollout struct {
	m       *llm.Model
	p       *llm.Prompt
	s       llm.Sampling
	tokens  int
	elapsed time.Duration
}

// NewRollout loads text (+ mmproj) with room for parallel sequences, builds the prompt (with an
// image when mmproj is given) and runs one warm-up round.
func NewRollout(text, mmproj string, threads, parallel, n, maxTokens int) (*Rollout, error) {
	m, err := llm.Load(text, mmproj, llm.Options{Threads: threads, ContextSize: 4096, Parallel: parallel, Seed: 1})
	if err != nil {
		return nil, err
	}
	var images [][]byte
	if mmproj != "" {
		images = append(images, testmodel.TestImage(64, 48, 1))
	}
	p, err := m.ChatPrompt("You are playing Who is the Spy.", "Describe the two images and say which one differs.", images...)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("rollout prompt: %w", err)
	}
	r := &Rollout{m: m, p: p, s: llm.Sampling{Temperature: 1, N: n, MaxTokens: maxTokens}}
	if err := r.Round(1000); err != nil { // warm-up; caches the prompt
		m.Close()
		return nil, err
	}
	r.tokens, r.elapsed = 0, 0
	return r, nil
}

// Round samples G completions with a fresh seed and adds them to the totals.
func (r *Rollout) Round(seed uint64) error {
	r.s.Seed = seed + 1
	start := time.Now()
	cs, err := r.m.Generate(context.Background(), r.p, r.s)
	if err != nil {
		return err
	}
	r.elapsed += time.Since(start)
	for _, c := range cs {
		r.tokens += len(c.Tokens)
	}
	return nil
}

// TokensPerSec is the sampled tokens per second over all rounds so far.
func (r *Rollout) TokensPerSec() float64 { return float64(r.tokens) / r.elapsed.Seconds() }

// Close frees the model.
func (r *Rollout) Close() error { return r.m.Close() }

// RolloutRatio times G completions decoded in parallel (G sequences sharing the prompt's KV cache)
// against the same G decoded one after another, alternating the two so that other load hits both
// alike. It returns both throughputs.
func RolloutRatio(text, mmproj string, threads, g, maxTokens, rounds int) (parallel, sequential float64, err error) {
	par, err := NewRollout(text, mmproj, threads, g, g, maxTokens)
	if err != nil {
		return 0, 0, err
	}
	defer par.Close()
	seq, err := NewRollout(text, mmproj, threads, 1, g, maxTokens)
	if err != nil {
		return 0, 0, err
	}
	defer seq.Close()
	for i := range rounds {
		if err := par.Round(uint64(i)); err != nil {
			return 0, 0, err
		}
		if err := seq.Round(uint64(i)); err != nil {
			return 0, 0, err
		}
	}
	return par.TokensPerSec(), seq.TokensPerSec(), nil
}
