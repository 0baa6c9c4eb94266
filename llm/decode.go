package llm

/*
#include "llama.h"
#include "vz.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"slices"
	"unsafe"
)

// Sequence 0 of the context always holds the last prompt evaluated; completions are decoded in
// sequences 1..Parallel that share its KV cells (llama_memory_seq_cp on a unified cache).
const promptSeq = 0

// maxOutputRows caps the rows per llama_decode whose logits are requested: llama.cpp keeps an
// output buffer of that many rows × n_vocab floats (64 × 152k × 4 bytes = 39 MB; a whole batch of
// 512 would be 311 MB).
const maxOutputRows = 64

// cachedPrompt remembers what sequence 0 holds, so that Generate and Score on the same prompt
// (and the same weights) skip re-evaluating it.
type cachedPrompt struct {
	valid  bool
	epoch  uint64
	tokens []int32
	keys   []string
	last   []float32 // logits after the prompt's last row
}

func (c *cachedPrompt) matches(p *Prompt, epoch uint64) bool {
	if !c.valid || c.epoch != epoch || !slices.Equal(c.tokens, p.Tokens) || len(c.keys) != len(p.Images) {
		return false
	}
	for i, sp := range p.Images {
		if c.keys[i] != sp.Key {
			return false
		}
	}
	return true
}

func (m *Model) memory() C.llama_memory_t { return C.llama_get_memory(m.ctx) }

// checkPrompt rejects prompts the engine cannot feed.
func (m *Model) checkPrompt(p *Prompt) error {
	if p == nil || len(p.Tokens) == 0 {
		return errors.New("llm: empty prompt")
	}
	if p.Tokens[len(p.Tokens)-1] == ImageRow {
		return errors.New("llm: a prompt must end with a text token, not an image row")
	}
	nv := int32(m.info.NVocab)
	row := 0
	for i, t := range p.Tokens {
		if t == ImageRow {
			row++
			continue
		}
		if t < 0 || t >= nv {
			return fmt.Errorf("llm: prompt token %d at index %d is outside the vocabulary (%d)", t, i, nv)
		}
	}
	n := 0
	for _, sp := range p.Images {
		n += sp.Rows
		if len(sp.Embd) != sp.Rows*m.info.NEmbdInp {
			return fmt.Errorf("llm: image span %s has %d floats, want %d rows × %d", sp.Key, len(sp.Embd), sp.Rows, m.info.NEmbdInp)
		}
		if sp.Index+sp.Rows > len(p.Tokens) {
			return fmt.Errorf("llm: image span %s runs past the prompt", sp.Key)
		}
		if m.info.NonCausalImages && sp.Rows > m.opts.BatchSize {
			// rows in different ubatches could not attend to each other both ways
			return fmt.Errorf("llm: image %s has %d rows, more than the batch size %d this model needs to decode it at once", sp.Key, sp.Rows, m.opts.BatchSize)
		}
	}
	if n != row {
		return fmt.Errorf("llm: prompt has %d image rows but its spans cover %d", row, n)
	}
	if len(p.Tokens) >= m.info.ContextSize {
		return fmt.Errorf("llm: prompt of %d rows does not fit the context of %d cells", len(p.Tokens), m.info.ContextSize)
	}
	return nil
}

// evalPrompt fills sequence 0 with p and returns the logits after its last row (a copy). If
// allLogits is not nil it is called with the logits after every text row (a view into llama.cpp's
// buffer, valid during the call); the prompt is then always evaluated afresh.
func (m *Model) evalPrompt(p *Prompt, allLogits func(row int, logits []float32)) ([]float32, error) {
	if err := m.checkPrompt(p); err != nil {
		return nil, err
	}
	if allLogits == nil && m.cached.matches(p, m.epoch) {
		return m.cached.last, nil
	}
	m.cached.valid = false
	C.llama_memory_clear(m.memory(), true)
	last, err := m.feedPrompt(p, promptSeq, allLogits)
	if err != nil {
		return nil, err
	}
	m.cached = cachedPrompt{valid: true, epoch: m.epoch, tokens: slices.Clone(p.Tokens), last: last}
	for _, sp := range p.Images {
		m.cached.keys = append(m.cached.keys, sp.Key)
	}
	return last, nil
}

// feedPrompt decodes a checked prompt into sequence seq (which must be empty) and returns a copy
// of the logits after its last row; allLogits, if not nil, sees the logits after every text row.
func (m *Model) feedPrompt(p *Prompt, seq int, allLogits func(row int, logits []float32)) ([]float32, error) {
	var last []float32
	b := newTokenBatch(&m.batch, m.opts.BatchSize)
	rows := make([]int, 0, m.opts.BatchSize) // prompt row of each batch entry
	flush := func() error {
		if b.n() == 0 {
			return nil
		}
		if err := m.decode(b); err != nil {
			return err
		}
		for i, row := range rows {
			if !b.wantsLogits(i) {
				continue
			}
			lg := m.logitsAt(i)
			if allLogits != nil {
				allLogits(row, lg)
			}
			if row == len(p.Tokens)-1 {
				last = slices.Clone(lg)
			}
		}
		b.clear()
		rows = rows[:0]
		return nil
	}

	pos, row := 0, 0
	for _, sp := range append(slices.Clone(p.Images), ImageSpan{Index: len(p.Tokens)}) {
		for ; row < sp.Index; row++ {
			if b.full() || (allLogits != nil && b.n() == maxOutputRows) {
				if err := flush(); err != nil {
					return nil, err
				}
			}
			b.add(p.Tokens[row], pos, seq, allLogits != nil || row == len(p.Tokens)-1)
			rows = append(rows, row)
			pos++
		}
		if err := flush(); err != nil {
			return nil, err
		}
		if sp.Rows == 0 {
			continue
		}
		if sp.Pos != pos {
			return nil, fmt.Errorf("llm: image span %s starts at position %d, the prompt is at %d", sp.Key, sp.Pos, pos)
		}
		rc := C.vz_decode_embd(m.ctx, (*C.float)(unsafe.Pointer(&sp.Embd[0])), C.int32_t(sp.Rows), C.int32_t(m.info.NEmbdInp),
			C.int32_t(pos), C.int32_t(sp.NX), C.int32_t(sp.NY), C.bool(m.info.MRoPE), C.bool(m.info.NonCausalImages),
			C.int32_t(seq), C.int32_t(m.opts.BatchSize))
		if rc != 0 {
			return nil, fmt.Errorf("llm: decoding image %s (%d rows at position %d) failed (code %d): %s", sp.Key, sp.Rows, pos, int(rc), takeLogErrors())
		}
		row += sp.Rows
		pos += sp.NPos
	}
	if last == nil {
		return nil, errors.New("llm: no logits after the prompt")
	}
	return last, nil
}

// decode runs llama_decode on a token batch.
func (m *Model) decode(b *tokenBatch) error {
	m.batch.n_tokens = C.int32_t(b.n())
	rc := C.llama_decode(m.ctx, m.batch)
	switch {
	case rc == 1:
		return fmt.Errorf("llm: the KV cache is full (context %d cells): %s", m.info.ContextSize, takeLogErrors())
	case rc != 0:
		return fmt.Errorf("llm: llama_decode failed (code %d): %s", int(rc), takeLogErrors())
	}
	return nil
}

// logitsAt returns the logits of batch entry i as a view into llama.cpp's output buffer.
func (m *Model) logitsAt(i int) []float32 {
	p := C.llama_get_logits_ith(m.ctx, C.int32_t(i))
	return unsafe.Slice((*float32)(unsafe.Pointer(p)), m.info.NVocab)
}

// tokenBatch fills a llama_batch allocated by llama_batch_init (one sequence id per entry).
type tokenBatch struct {
	c      *C.struct_llama_batch
	cap    int
	token  []C.llama_token
	pos    []C.llama_pos
	nSeq   []C.int32_t
	seq    []*C.llama_seq_id
	logits []C.int8_t
	count  int
}

func newTokenBatch(c *C.struct_llama_batch, capacity int) *tokenBatch {
	return &tokenBatch{
		c:      c,
		cap:    capacity,
		token:  unsafe.Slice(c.token, capacity),
		pos:    unsafe.Slice(c.pos, capacity),
		nSeq:   unsafe.Slice(c.n_seq_id, capacity),
		seq:    unsafe.Slice(c.seq_id, capacity),
		logits: unsafe.Slice(c.logits, capacity),
	}
}

func (b *tokenBatch) add(tok int32, pos, seq int, logits bool) {
	i := b.count
	b.token[i] = C.llama_token(tok)
	b.pos[i] = C.llama_pos(pos)
	b.nSeq[i] = 1
	*b.seq[i] = C.llama_seq_id(seq)
	b.logits[i] = 0
	if logits {
		b.logits[i] = 1
	}
	b.count++
}

func (b *tokenBatch) n() int                 { return b.count }
func (b *tokenBatch) full() bool             { return b.count == b.cap }
func (b *tokenBatch) clear()                 { b.count = 0 }
func (b *tokenBatch) wantsLogits(i int) bool { return b.logits[i] != 0 }
