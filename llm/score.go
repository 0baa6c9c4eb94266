package llm

/*
#include "llama.h"
*/
import "C"

import (
	"context"
	"fmt"
	"slices"
)

// Score returns the log-prob of every token of every completion, given the prompt and the tokens
// before it, under the distribution Generate draws from with s (Temperature, TopK, TopP; a token
// outside a top-k/top-p set gets -Inf; Temperature 0 gives 0 for the greedy token). With
// Sampling{Temperature: 1} these are the model's plain log-softmax log-probs. The weights in
// effect are the current adapter's (SetAdapter(nil, 0) for the base model).
func (m *Model) Score(ctx context.Context, p *Prompt, completions [][]int32, s Sampling) ([][]float32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.model == nil {
		return nil, errClosed
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	last, err := m.evalPrompt(p, nil)
	if err != nil {
		return nil, err
	}
	for j, c := range completions {
		if err := m.checkTokens(c); err != nil {
			return nil, fmt.Errorf("completion %d: %w", j, err)
		}
		if len(p.Tokens)+len(c) > m.info.ContextSize {
			return nil, fmt.Errorf("llm: completion %d: %d prompt rows and %d tokens do not fit the context of %d cells", j, len(p.Tokens), len(c), m.info.ContextSize)
		}
	}
	out := make([][]float32, len(completions))
	for j, c := range completions {
		out[j] = make([]float32, len(c))
	}
	m.rows.each(len(completions), m.info.NVocab, func(d *distribution, j int) {
		if c := completions[j]; len(c) > 0 {
			out[j][0] = tokenLogProb(d, last, c[0], s)
		}
	})
	// Completions go in sequences 1..Parallel, as many at a time as fit the free cells; their
	// tokens are packed into batches of up to BatchSize entries.
	free := m.info.ContextSize - len(p.Tokens)
	for start := 0; start < len(completions); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		end, cells := start, 0
		for end < len(completions) && end-start < m.opts.Parallel && cells+len(completions[end]) <= free {
			cells += len(completions[end])
			end++
		}
		if err := m.scoreWave(p, completions[start:end], out[start:end], s); err != nil {
			return nil, err
		}
		start = end
	}
	return out, nil
}

func (m *Model) scoreWave(p *Prompt, comps [][]int32, out [][]float32, s Sampling) error {
	mem := m.memory()
	defer func() {
		for i := range comps {
			C.llama_memory_seq_rm(mem, C.llama_seq_id(1+i), -1, -1)
		}
	}()
	for i := range comps {
		C.llama_memory_seq_cp(mem, promptSeq, C.llama_seq_id(1+i), -1, -1)
	}
	type entry struct{ comp, t int }
	b := newTokenBatch(&m.batch, m.opts.BatchSize)
	entries := make([]entry, 0, m.opts.BatchSize)
	rows := make([][]float32, 0, maxOutputRows)
	flush := func() error {
		if b.n() == 0 {
			return nil
		}
		if err := m.decode(b); err != nil {
			return err
		}
		// fetched here, not in the goroutines: llama_get_logits_ith reorders the output buffer
		rows = rows[:0]
		for k := range entries {
			rows = append(rows, m.logitsAt(k))
		}
		m.rows.each(len(entries), m.info.NVocab, func(d *distribution, k int) {
			e := entries[k]
			out[e.comp][e.t+1] = tokenLogProb(d, rows[k], comps[e.comp][e.t+1], s)
		})
		b.clear()
		entries = entries[:0]
		return nil
	}
	for i, c := range comps {
		// the last token's logits predict nothing we score
		for t := 0; t+1 < len(c); t++ {
			if b.n() == min(b.cap, maxOutputRows) {
				if err := flush(); err != nil {
					return err
				}
			}
			b.add(c[t], p.NPos+t, 1+i, true)
			entries = append(entries, entry{i, t})
		}
	}
	return flush()
}

// Logits returns the logits after every row of the prompt followed by completion: out[i] predicts
// row i+1 (out[len(p.Tokens)-1] the first completion token); rows that are image embeddings get
// nil. It is meant for parity tests against the gradient engine (each row is NVocab floats).
func (m *Model) Logits(p *Prompt, completion []int32) ([][]float32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.model == nil {
		return nil, errClosed
	}
	if err := m.checkPrompt(p); err != nil {
		return nil, err
	}
	if err := m.checkTokens(completion); err != nil {
		return nil, err
	}
	out := make([][]float32, len(p.Tokens)+len(completion))
	_, err := m.evalPrompt(p, func(row int, lg []float32) { out[row] = slices.Clone(lg) })
	if err != nil {
		return nil, err
	}
	if len(completion) == 0 {
		return out, nil
	}
	if len(p.Tokens)+len(completion) > m.info.ContextSize {
		return nil, fmt.Errorf("llm: %d prompt rows and %d tokens do not fit the context of %d cells", len(p.Tokens), len(completion), m.info.ContextSize)
	}
	mem := m.memory()
	C.llama_memory_seq_cp(mem, promptSeq, 1, -1, -1)
	defer C.llama_memory_seq_rm(mem, 1, -1, -1)
	b := newTokenBatch(&m.batch, m.opts.BatchSize)
	step := min(b.cap, maxOutputRows)
	for t0 := 0; t0 < len(completion); t0 += step {
		b.clear()
		n := min(step, len(completion)-t0)
		for t := t0; t < t0+n; t++ {
			b.add(completion[t], p.NPos+t, 1, true)
		}
		if err := m.decode(b); err != nil {
			return nil, err
		}
		for k := range n {
			out[len(p.Tokens)+t0+k] = slices.Clone(m.logitsAt(k))
		}
	}
	return out, nil
}

func (m *Model) checkTokens(toks []int32) error {
	for i, t := range toks {
		if t < 0 || int(t) >= m.info.NVocab {
			return fmt.Errorf("llm: token %d at index %d is outside the vocabulary (%d)", t, i, m.info.NVocab)
		}
	}
	return nil
}
