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
	// NonCausal: the span's rows attend to each other both ways, as llama.cpp decodes gemma3's
	// image rows (mtmd_decode_use_non_causal, llm.Info().NonCausalImages); rows outside the span
	// stay causal.
	NonCausal bool
}

// Sequence is one token sequence as the rollout engine fed and sampled it.
type Sequence struct {
	Tokens    []int32
	Embeds    []EmbedSpan
	Positions []int32 // one position per token; nil means 0, 1, 2, ...
	// Positions4 (M-RoPE models only, e.g. qwen2vl) gives each token its 4 position components
	// (t, h, w, e) exactly as llama.cpp feeds them: a text token at p is {p, p, p, 0}, image row r
	// of a span at p with an nx-wide grid is {p, p + r/nx, p + r%nx, 0}. Leave Positions nil when
	// it is set. nil: every token is text, {p, p, p, 0} with p from Positions. Attention stays causal
	// in index order, which is llama.cpp's M-RoPE mask when rows are in (t, h, w) order.
	Positions4 [][4]int32
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
	pos     []int32     // per row: the position (M-RoPE: its t component), for RoPE and sliding windows
	mpos    [][4]int32  // per row: M-RoPE positions; nil for 1-D RoPE
	ncEnd   []int32     // per row: end row (exclusive) of the non-causal span holding it, or 0; nil if none
	segs    []segment
	targets []target
	seqLen  []int
	invTemp float32 // 1 / Batch.Temperature: the head's logits are scaled by it
}

// checkWeights says whether weights (nil: no loss) has one value per token of every sequence.
func checkWeights(b *Batch, weights [][]float32) error {
	if weights == nil {
		return nil
	}
	if len(weights) != len(b.Seqs) {
		return fmt.Errorf("weights for %d sequences, batch has %d", len(weights), len(b.Seqs))
	}
	for s := range b.Seqs {
		if n := len(b.Seqs[s].Tokens); len(weights[s]) != n {
			return fmt.Errorf("sequence %d: %d weights for %d tokens", s, len(weights[s]), n)
		}
	}
	return nil
}

// pack validates the batch against the model and lays it out; weights may be nil (no loss).
func pack(b *Batch, cfg Config, weights [][]float32) (*packed, error) {
	if len(b.Seqs) == 0 {
		return nil, fmt.Errorf("batch has no sequences")
	}
	if err := checkWeights(b, weights); err != nil {
		return nil, err
	}
	rows := make([][][]float32, len(b.Seqs)) // per sequence, per token: embedding row or nil
	pos := make([][]int32, len(b.Seqs))
	mpos := make([][][4]int32, len(b.Seqs))
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
		mp, err := mropePositions(sq, pos[s], cfg)
		if err != nil {
			return nil, fmt.Errorf("sequence %d: %w", s, err)
		}
		if mp != nil {
			mpos[s] = mp
			pos[s] = make([]int32, n)
			for i := range mp {
				pos[s][i] = mp[i][0]
			}
		}
	}
	// Longest common prefix over tokens, positions and embedding rows.
	p := len(b.Seqs[0].Tokens)
	for s := 1; s < len(b.Seqs); s++ {
		i := 0
		for i < p && i < len(b.Seqs[s].Tokens) && pos[s][i] == pos[0][i] && sameRow(b.Seqs[s].Tokens[i], rows[s][i], b.Seqs[0].Tokens[i], rows[0][i]) &&
			(mpos[0] == nil || mpos[s][i] == mpos[0][i]) {
			i++
		}
		p = i
	}
	// The shared prefix must not split a non-causal span: its rows see the whole span.
	for s := range b.Seqs {
		for _, sp := range b.Seqs[s].Embeds {
			if k := len(sp.Rows) / cfg.NEmbd; sp.NonCausal && sp.Pos < p && p < sp.Pos+k {
				p = sp.Pos
			}
		}
	}
	pk := &packed{prefix: p, invTemp: 1}
	if b.Temperature < 0 || math.IsNaN(float64(b.Temperature)) || math.IsInf(float64(b.Temperature), 0) {
		return nil, fmt.Errorf("temperature %v: want a positive number (0 means 1)", b.Temperature)
	}
	if b.Temperature > 0 {
		pk.invTemp = 1 / b.Temperature
		if math.IsInf(float64(pk.invTemp), 0) {
			return nil, fmt.Errorf("temperature %v is too small (1/temperature overflows)", b.Temperature)
		}
	}
	add := func(s, i int) {
		pk.tokens = append(pk.tokens, b.Seqs[s].Tokens[i])
		pk.embed = append(pk.embed, rows[s][i])
		pk.pos = append(pk.pos, pos[s][i])
		if mpos[s] != nil {
			pk.mpos = append(pk.mpos, mpos[s][i])
		}
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
		for _, sp := range b.Seqs[s].Embeds {
			if !sp.NonCausal {
				continue
			}
			if pk.ncEnd == nil {
				pk.ncEnd = make([]int32, pk.n)
			}
			k := len(sp.Rows) / cfg.NEmbd
			end := int32(rowOf(s, sp.Pos+k-1) + 1)
			for i := sp.Pos; i < sp.Pos+k; i++ {
				pk.ncEnd[rowOf(s, i)] = end
			}
		}
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

// mropePositions returns the 4-component positions of a sequence for an M-RoPE model (nil for
// other models), checking Positions4 against the model and the sequence.
func mropePositions(sq *Sequence, pos []int32, cfg Config) ([][4]int32, error) {
	if !cfg.MRoPE() {
		if sq.Positions4 != nil {
			return nil, fmt.Errorf("Positions4 given, but the %s model does not use M-RoPE", cfg.Arch)
		}
		return nil, nil
	}
	n := len(sq.Tokens)
	if sq.Positions4 != nil {
		if sq.Positions != nil {
			return nil, fmt.Errorf("both Positions and Positions4 are set: give one")
		}
		if len(sq.Positions4) != n {
			return nil, fmt.Errorf("%d M-RoPE positions for %d tokens", len(sq.Positions4), n)
		}
		return sq.Positions4, nil
	}
	if len(sq.Embeds) > 0 {
		// Image rows of an M-RoPE model have 2-D positions that 1-D positions cannot express.
		return nil, fmt.Errorf("the %s model uses M-RoPE: a sequence with embedding rows needs Positions4", cfg.Arch)
	}
	out := make([][4]int32, n)
	for i, p := range pos {
		out[i] = [4]int32{p, p, p, 0}
	}
	return out, nil
}
