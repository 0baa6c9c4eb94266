package cuda

import (
	"fmt"
	"math"
	"slices"

	"github.com/vzlocal/vzlocal/lora"
)

// packed is a batch laid out as the CPU engine lays it out (lora/batch.go): the longest common
// prefix of all sequences once, then each sequence's remainder; a remainder attends to the prefix
// and causally to itself. The CPU engine's pack is unexported, so this is a copy of its rules
// (same validation, same layout, same target order); the parity tests compare the two engines'
// outputs on shared-prompt batches, which would catch a drift between them.
type packed struct {
	n       int
	prefix  int
	x0      []float32 // [n][E] input rows: token embeddings or mmproj rows
	pos     []int32
	cos     []float32 // [n][NRot/2] RoPE cos and sin of every row's position
	sin     []float32
	seg     []int32 // [segments][3] {r0, r1, prefix}
	tRow    []int32 // scored row, sorted ascending
	tTok    []int32
	tSeq    []int
	tIdx    []int
	seqLen  []int
	invTemp float32
}

func packBatch(b *lora.Batch, m *lora.Model, weights [][]float32) (*packed, error) {
	cfg := m.Cfg
	E := cfg.NEmbd
	if len(b.Seqs) == 0 {
		return nil, fmt.Errorf("batch has no sequences")
	}
	if weights != nil && len(weights) != len(b.Seqs) {
		return nil, fmt.Errorf("weights for %d sequences, batch has %d", len(weights), len(b.Seqs))
	}
	rows := make([][][]float32, len(b.Seqs))
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
			if len(sp.Rows) == 0 || len(sp.Rows)%E != 0 {
				return nil, fmt.Errorf("sequence %d: embedding span at %d has %d values, not a multiple of n_embd %d", s, sp.Pos, len(sp.Rows), E)
			}
			k := len(sp.Rows) / E
			if sp.Pos < 0 || sp.Pos+k > n {
				return nil, fmt.Errorf("sequence %d: embedding span [%d, %d) outside %d tokens", s, sp.Pos, sp.Pos+k, n)
			}
			for j := 0; j < k; j++ {
				if er[sp.Pos+j] != nil {
					return nil, fmt.Errorf("sequence %d: embedding spans overlap at token %d", s, sp.Pos+j)
				}
				er[sp.Pos+j] = sp.Rows[j*E : (j+1)*E]
			}
		}
		for i, t := range sq.Tokens {
			if er[i] == nil && (t < 0 || int(t) >= cfg.NVocab) {
				return nil, fmt.Errorf("sequence %d: token %d at index %d outside vocabulary of %d", s, t, i, cfg.NVocab)
			}
		}
		if sq.Mask != nil {
			for i, mk := range sq.Mask {
				if mk && er[i] != nil {
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
	p := len(b.Seqs[0].Tokens)
	for s := 1; s < len(b.Seqs); s++ {
		i := 0
		for i < p && i < len(b.Seqs[s].Tokens) && pos[s][i] == pos[0][i] &&
			sameRow(b.Seqs[s].Tokens[i], rows[s][i], b.Seqs[0].Tokens[i], rows[0][i]) {
			i++
		}
		p = i
	}
	if b.Temperature < 0 || math.IsNaN(float64(b.Temperature)) || math.IsInf(float64(b.Temperature), 0) {
		return nil, fmt.Errorf("temperature %v: want a positive number (0 means 1)", b.Temperature)
	}
	pk := &packed{prefix: p, invTemp: 1}
	if b.Temperature > 0 {
		pk.invTemp = 1 / b.Temperature
	}
	add := func(s, i int) {
		if r := rows[s][i]; r != nil {
			pk.x0 = append(pk.x0, r...)
		} else {
			t := int(b.Seqs[s].Tokens[i])
			pk.x0 = append(pk.x0, m.TokEmbd[t*E:(t+1)*E]...)
		}
		pk.pos = append(pk.pos, pos[s][i])
		pk.n++
	}
	for i := 0; i < p; i++ {
		add(0, i)
	}
	if p > 0 {
		pk.seg = append(pk.seg, 0, int32(p), 0)
	}
	start := make([]int, len(b.Seqs))
	for s := range b.Seqs {
		start[s] = pk.n
		for i := p; i < len(b.Seqs[s].Tokens); i++ {
			add(s, i)
		}
		if pk.n > start[s] {
			pk.seg = append(pk.seg, int32(start[s]), int32(pk.n), int32(p))
		}
		pk.seqLen = append(pk.seqLen, len(b.Seqs[s].Tokens))
	}
	rowOf := func(s, i int) int {
		if i < p {
			return i
		}
		return start[s] + i - p
	}
	type target struct {
		row      int
		tok      int32
		seq, idx int
	}
	var ts []target
	for s := range b.Seqs {
		sq := &b.Seqs[s]
		for i := 1; i < len(sq.Tokens); i++ {
			if (sq.Mask == nil && rows[s][i] == nil) || (sq.Mask != nil && sq.Mask[i]) {
				ts = append(ts, target{row: rowOf(s, i-1), tok: sq.Tokens[i], seq: s, idx: i})
			}
		}
	}
	slices.SortStableFunc(ts, func(a, b target) int { return a.row - b.row })
	for _, t := range ts {
		pk.tRow = append(pk.tRow, int32(t.row))
		pk.tTok = append(pk.tTok, t.tok)
		pk.tSeq = append(pk.tSeq, t.seq)
		pk.tIdx = append(pk.tIdx, t.idx)
	}
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

// ropeTable returns cos and sin [n][NRot/2] of every row's angles, computed exactly as the CPU
// engine's newRopeTable (float32 repeated multiplication like ggml), so both engines rotate by
// the same numbers.
func ropeTable(c lora.Config, pos []int32) (cos, sin []float32) {
	half := c.NRot / 2
	cos, sin = make([]float32, len(pos)*half), make([]float32, len(pos)*half)
	thetaScale := float32(math.Pow(float64(c.RopeBase), -2.0/float64(c.NRot)))
	for r, p := range pos {
		theta := float32(p) * c.RopeScale
		for i := 0; i < half; i++ {
			th := theta
			if c.RopeFreqs != nil {
				th /= c.RopeFreqs[i]
			}
			cos[r*half+i] = float32(math.Cos(float64(th)))
			sin[r*half+i] = float32(math.Sin(float64(th)))
			theta *= thetaScale
		}
	}
	return cos, sin
}
