package llm

/*
#include "llama.h"
*/
import "C"

import (
	"context"
	"fmt"
	"math/rand/v2"
)

// Request is one prompt of a GenerateBatch call with its own sampling settings.
type Request struct {
	Prompt   *Prompt
	Sampling Sampling // Seed 0 takes Options.Seed + r·φ (r = the request's index), so that
	// requests of one batch do not share random streams
}

// GenerateBatch samples the completions of several prompts, decoding completions of different
// prompts together as well (the players of one game round see different images). Completion j of
// request r draws from PCG(seed_r, j), as Generate does, so a request gives the same completions
// here as alone. The result has len(reqs[r].Sampling.N) completions per request, in order.
func (m *Model) GenerateBatch(ctx context.Context, reqs []Request) ([][]Completion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.model == nil {
		return nil, errClosed
	}
	// A unit is up to Parallel completions of one request that share one copy of its prompt.
	type unit struct{ req, first, n int }
	var units []unit
	out := make([][]Completion, len(reqs))
	samplings := make([]Sampling, len(reqs))
	for r, q := range reqs {
		if err := m.checkPrompt(q.Prompt); err != nil {
			return nil, fmt.Errorf("request %d: %w", r, err)
		}
		if err := q.Sampling.check(); err != nil {
			return nil, fmt.Errorf("request %d: %w", r, err)
		}
		s := q.Sampling.withDefaults(m.opts.Seed + uint64(r)*0x9e3779b97f4a7c15) // keeps a non-zero Seed
		samplings[r] = s
		out[r] = make([]Completion, s.N)
		per := min(m.opts.Parallel, (m.info.ContextSize-len(q.Prompt.Tokens))/s.MaxTokens)
		if per < 1 {
			return nil, fmt.Errorf("llm: request %d: a prompt of %d rows and %d new tokens do not fit the context of %d cells",
				r, len(q.Prompt.Tokens), s.MaxTokens, m.info.ContextSize)
		}
		for j := 0; j < s.N; j += per {
			units = append(units, unit{r, j, min(per, s.N-j)})
		}
	}
	cellsOf := func(u unit) int { return len(reqs[u.req].Prompt.Tokens) + u.n*samplings[u.req].MaxTokens }

	m.cached.valid = false // sequence 0's prompt is cleared below
	mem := m.memory()
	defer C.llama_memory_clear(mem, true)
	for start := 0; start < len(units); {
		end, seqs, cells := start, 0, 0
		for end < len(units) && seqs+units[end].n <= m.opts.Parallel && cells+cellsOf(units[end]) <= m.info.ContextSize {
			seqs += units[end].n
			cells += cellsOf(units[end])
			end++
		}
		C.llama_memory_clear(mem, true)
		var slots []slot
		seq := 1
		for _, u := range units[start:end] {
			q, s := reqs[u.req], samplings[u.req]
			last, err := m.feedPrompt(q.Prompt, seq, nil)
			if err != nil {
				return nil, fmt.Errorf("request %d: %w", u.req, err)
			}
			for k := range u.n {
				if k > 0 {
					C.llama_memory_seq_cp(mem, C.llama_seq_id(seq), C.llama_seq_id(seq+k), -1, -1)
				}
				slots = append(slots, slot{c: &out[u.req][u.first+k], seq: seq + k, npos: q.Prompt.NPos, s: s,
					rng: rand.New(rand.NewPCG(s.Seed, uint64(u.first+k))), first: last})
			}
			seq += u.n
		}
		if err := m.decodeSlots(ctx, slots); err != nil {
			return nil, err
		}
		start = end
	}
	return out, nil
}
