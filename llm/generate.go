package llm

/*
#include "llama.h"
*/
import "C"

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/rs/zerolog/log"
)

// Finish reasons of a completion.
const (
	FinishStop   = "stop"   // the model sampled an end-of-generation token (kept as the last token)
	FinishLength = "length" // MaxTokens were sampled
)

// Completion is one sampled answer to a prompt.
type Completion struct {
	Tokens   []int32   // sampled ids, the end-of-generation token included when Finish is "stop"
	LogProbs []float32 // behaviour log-prob of each token under the distribution it was drawn from
	Text     string    // Tokens rendered as text, without control tokens
	Finish   string    // FinishStop or FinishLength
}

// Generate samples s.N completions of one prompt. Up to Options.Parallel of them are decoded
// together as sequences that share the prompt's KV cells. Completion j draws its random numbers
// from PCG(seed, j) alone, so it comes out the same whatever N, Parallel or batch it ran in.
func (m *Model) Generate(ctx context.Context, p *Prompt, s Sampling) ([]Completion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.model == nil {
		return nil, errClosed
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	s = s.withDefaults(m.opts.Seed)
	last, err := m.evalPrompt(p, nil)
	if err != nil {
		return nil, err
	}
	free := m.info.ContextSize - len(p.Tokens)
	wave := min(m.opts.Parallel, s.N, m.opts.BatchSize, free/s.MaxTokens)
	if wave < 1 {
		return nil, fmt.Errorf("llm: a prompt of %d rows and %d new tokens do not fit the context of %d cells",
			len(p.Tokens), s.MaxTokens, m.info.ContextSize)
	}
	out := make([]Completion, s.N)
	for start := 0; start < s.N; start += wave {
		n := min(wave, s.N-start)
		if err := m.generateWave(ctx, p, last, s, out[start:start+n], start); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// generateWave decodes len(out) completions of the prompt in sequence 0 in parallel, completion
// i in sequence 1+i.
func (m *Model) generateWave(ctx context.Context, p *Prompt, last []float32, s Sampling, out []Completion, first int) error {
	mem := m.memory()
	defer func() {
		for i := range out {
			C.llama_memory_seq_rm(mem, C.llama_seq_id(1+i), -1, -1)
		}
	}()
	slots := make([]slot, len(out))
	for i := range out {
		C.llama_memory_seq_cp(mem, promptSeq, C.llama_seq_id(1+i), -1, -1)
		slots[i] = slot{c: &out[i], seq: 1 + i, npos: p.NPos, s: s, rng: rand.New(rand.NewPCG(s.Seed, uint64(first+i))), first: last}
	}
	return m.decodeSlots(ctx, slots)
}

// slot is one completion being decoded in its own sequence.
type slot struct {
	c     *Completion
	seq   int
	npos  int // positions of its prompt: the first sampled token sits at npos
	s     Sampling
	rng   *rand.Rand
	first []float32 // logits after its prompt
}

// decodeSlots samples every slot's first token from its prompt's logits, then decodes all
// unfinished slots together, one token each per llama_decode, until every one has stopped.
func (m *Model) decodeSlots(ctx context.Context, slots []slot) error {
	all := make([]int, len(slots))
	rows := make([][]float32, len(slots))
	for i := range slots {
		all[i], rows[i] = i, slots[i].first
	}
	m.sampleRows(slots, all, rows)
	active := make([]int, 0, len(slots))
	for i := range slots {
		if !m.finished(slots[i].c, slots[i].s) {
			active = append(active, i)
		}
	}
	b := newTokenBatch(&m.batch, m.opts.BatchSize)
	for len(active) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		b.clear()
		for _, i := range active {
			c := slots[i].c
			b.add(c.Tokens[len(c.Tokens)-1], slots[i].npos+len(c.Tokens)-1, slots[i].seq, true)
		}
		if err := m.decode(b); err != nil {
			return err
		}
		rows = rows[:0]
		for k := range active {
			rows = append(rows, m.logitsAt(k))
		}
		m.sampleRows(slots, active, rows)
		still := active[:0]
		for _, i := range active {
			if !m.finished(slots[i].c, slots[i].s) {
				still = append(still, i)
			}
		}
		active = still
	}
	for _, sl := range slots {
		text := sl.c.Tokens
		if sl.c.Finish == FinishStop {
			text = text[:len(text)-1]
		}
		sl.c.Text = m.detokenize(text)
	}
	log.Debug().Int("completions", len(slots)).Msg("llm: decoded")
	return nil
}

// sampleRows draws the next token of slots[which[k]] from rows[k], every k, on several cores
// (m.rows). The rows are fetched beforehand on the caller's goroutine: llama_get_logits_ith
// reorders llama.cpp's output buffer on its first call after a decode.
func (m *Model) sampleRows(slots []slot, which []int, rows [][]float32) {
	m.rows.each(len(which), m.info.NVocab, func(d *distribution, k int) {
		sl := &slots[which[k]]
		tok, lp := sampleToken(d, rows[k], sl.s, sl.rng)
		sl.c.Tokens = append(sl.c.Tokens, tok)
		sl.c.LogProbs = append(sl.c.LogProbs, lp)
	})
}

// finished sets c.Finish and reports whether c is complete.
func (m *Model) finished(c *Completion, s Sampling) bool {
	switch {
	case m.isEOG(c.Tokens[len(c.Tokens)-1]):
		c.Finish = FinishStop
	case len(c.Tokens) >= s.MaxTokens:
		c.Finish = FinishLength
	default:
		return false
	}
	return true
}
