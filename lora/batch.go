package lora

import (
	"fmt"
	"math"
	"slices"
)

// EmbedSpan places precomputed embedding rows (from llama.cpp's mmproj) at token indices
// Pos, Pos+1, ...; the token ids at those indices are ignored.
type EmbedSpan struct {
	Pos  int
	Rows []float32 // k * n_embd values: k rows
}

// Sequence is one token sequence as the rollout engine fed and sampled it.
type Sequence struct {
	Tokens    []int32
	Embeds    []EmbedSpan
	Positions []int32 // one position per token; nil means 0, 1, 2, ... (M-RoPE will need more later)
	// Mask[i] scores token i: its log-prob given tokens < i (the completion mask). Mask[0] must be
	// false. nil scores every token from index 1 on.
	Mask []bool
}

// Batch is a set of sequences, typically a GRPO group: G completions of one prompt. The engine finds
// the longest common prefix (tokens, positions and embedding rows) and computes it once.
type Batch struct {
	Seqs []Sequence
	// Temperature scores the tempered distribution softmax(logits / Temperature), the one the
	// rollout engine sampled from, so log pi_theta compares like with like with the behaviour
	// log-probs. 0 means 1.
	Temperature float32
}

// target is one scored token: the logits of packed row `row` evaluated at token tok.
type target struct {
	row      int
	tok      int32
	seq, idx int
}

// packed is a batch laid out as rows: the shared prefix once, then each sequence's remainder.
type packed struct {
	n       int
	prefix  int
	tokens  []int32     // per row; ignored where embed[row] != nil
	embed   [][]float32 // per row: an embedding row or nil
	pos     []int32
	segs    []segment
	targets []target
	seqLen  []int
	invTemp float32 // 1 / Batch.Temperature: the head's logits are scaled by it
}

// pack validates the batch against the model and lays it out; weights may be nil (no loss).
func pack(b *Batch, cfg Config, weights [][]float32) (*packed, error) {
	if len(b.Seqs) == 0 {
		return nil, fmt.Errorf("batch has no sequences")
	}
	if weights != nil && len(weights) != len(b.Seqs) {
		return nil, fmt.Errorf("weights for %d sequences, batch has %d", len(weights), len(b.Seqs))
	}
	rows := make([][][]float32, len(b.Seqs)) // per sequence, per token: embedding row or nil
	pos := make([][]int32, len(b.Seqs))
	for s := range b.Seqs {
		sq := &b.Seqs[s]
		n := len(sq.Tokens)
		if n == 0 {
			return nil, fmt.Errorf("sequence %d is empty", s)
		}
		if sq.Mask != nil && len(sq.Mask) != n {
			return nil, fmt.Errorf("sequence %d: mask has %d entries for %d tokens", s, len(sq.Mask), n)
		}
		if sq.Mask != nil && sq.Mask[0] {
			return nil, fmt.Errorf("sequence %d: token 0 cannot be scored (no previous token)", s)
		}
		if weights != nil && len(weights[s]) != n {
			return nil, fmt.Errorf("sequence %d: %d weights for %d tokens", s, len(weights[s]), n)
		}
		er := make([][]float32, n)
		for _, sp := range sq.Embeds {
			if len(sp.Rows) == 0 || len(sp.Rows)%cfg.NEmbd != 0 {
				return nil, fmt.Errorf("sequence %d: embedding span at %d has %d values, not a multiple of n_embd %d", s, sp.Pos, len(sp.Rows), cfg.NEmbd)
			}
			k := len(sp.Rows) / cfg.NEmbd
			if sp.Pos < 0 || sp.Pos+k > n {
				return nil, fmt.Errorf("sequence %d: embedding span [%d, %d) outside %d tokens", s, sp.Pos, sp.Pos+k, n)
			}
			for j := 0; j < k; j++ {
				if er[sp.Pos+j] != nil {
					return nil, fmt.Errorf("sequence %d: embedding spans overlap at token %d", s, sp.Pos+j)
				}
				er[sp.Pos+j] = sp.Rows[j*cfg.NEmbd : (j+1)*cfg.NEmbd]
			}
		}
		for i, t := range sq.Tokens {
			if er[i] == nil && (t < 0 || int(t) >= cfg.NVocab) {
				return nil, fmt.Errorf("sequence %d: token %d at index %d outside vocabulary of %d", s, t, i, cfg.NVocab)
			}
		}
		if sq.Mask != nil {
			for i, m := range sq.Mask {
				if m && er[i] != nil {
					return nil, fmt.Errorf("sequence %d: index %d is an embedding row and cannot be scored", s, i)
				}
			}
		}
		rows[s] = er
		if sq.Positions != nil {
			if len(sq.Positions) != n {
				return nil, fmt.Errorf("sequence %d: %d positions for %d tokens", s, len(sq.Positions), n)
			}
			pos[s] = sq.Positions
		} else {
			pos[s] = make([]int32, n)
			for i := range pos[s] {
				pos[s][i] = int32(i)
			}
		}
	}
	// Longest common prefix over tokens, positions and embedding rows.
	p := len(b.Seqs[0].Tokens)
	for s := 1; s < len(b.Seqs); s++ {
		i := 0
		for i < p && i < len(b.Seqs[s].Tokens) && pos[s][i] == pos[0][i] && sameRow(b.Seqs[s].Tokens[i], rows[s][i], b.Seqs[0].Tokens[i], rows[0][i]) {
			i++
		}
		p = i
	}
	pk := &packed{prefix: p, invTemp: 1}
	if b.Temperature < 0 || math.IsNaN(float64(b.Temperature)) || math.IsInf(float64(b.Temperature), 0) {
		return nil, fmt.Errorf("temperature %v: want a positive number (0 means 1)", b.Temperature)
	}
	if b.Temperature > 0 {
		pk.invTemp = 1 / b.Temperature
	}
	add := func(s, i int) {
		pk.tokens = append(pk.tokens, b.Seqs[s].Tokens[i])
		pk.embed = append(pk.embed, rows[s][i])
		pk.pos = append(pk.pos, pos[s][i])
	}
	for i := 0; i < p; i++ {
		add(0, i)
	}
	if p > 0 {
		pk.segs = append(pk.segs, segment{0, p, 0})
	}
	start := make([]int, len(b.Seqs))
	for s := range b.Seqs {
		start[s] = len(pk.tokens)
		for i := p; i < len(b.Seqs[s].Tokens); i++ {
			add(s, i)
		}
		if r1 := len(pk.tokens); r1 > start[s] {
			pk.segs = append(pk.segs, segment{start[s], r1, p})
		}
		pk.seqLen = append(pk.seqLen, len(b.Seqs[s].Tokens))
	}
	pk.n = len(pk.tokens)
	rowOf := func(s, i int) int {
		if i < p {
			return i
		}
		return start[s] + i - p
	}
	for s := range b.Seqs {
		sq := &b.Seqs[s]
		for i := 1; i < len(sq.Tokens); i++ {
			if (sq.Mask == nil && rows[s][i] == nil) || (sq.Mask != nil && sq.Mask[i]) {
				pk.targets = append(pk.targets, target{row: rowOf(s, i-1), tok: sq.Tokens[i], seq: s, idx: i})
			}
		}
	}
	// Group targets by row so the vocabulary projection runs once per scored row.
	slices.SortStableFunc(pk.targets, func(a, b target) int { return a.row - b.row })
	return pk, nil
}

func sameRow(ta int32, ea []float32, tb int32, eb []float32) bool {
	if (ea == nil) != (eb == nil) {
		return false
	}
	if ea == nil {
		return ta == tb
	}
	return slices.Equal(ea, eb)
}
