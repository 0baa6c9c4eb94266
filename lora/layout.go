package lora

// Layout is a batch as the engines lay it out: the longest common prefix of all sequences once,
// then each sequence's remainder, which attends to the prefix and causally to itself. The CUDA
// engine builds its device buffers from it, so both engines share one set of validation and layout
// rules (and the parity tests compare engines, not two copies of the packing).
type Layout struct {
	Rows     int
	Prefix   int
	Tokens   []int32     // per row; ignored where Embed[row] != nil
	Embed    [][]float32 // per row: an embedding row, or nil for a token
	Pos      []int32     // per row: the position (M-RoPE: its t component)
	Segments []LayoutSegment
	Targets  []LayoutTarget // scored tokens, sorted by row
	SeqLen   []int
	InvTemp  float32 // 1 / Batch.Temperature
	// MRoPE and NonCausal say whether the batch uses 4-component positions or non-causal image
	// spans; an engine without them must refuse the batch.
	MRoPE, NonCausal bool
}

// LayoutSegment is rows [R0, R1) attending to rows [0, Prefix) and causally to themselves.
type LayoutSegment struct{ R0, R1, Prefix int }

// LayoutTarget is one scored token: the logits of row Row evaluated at token Tok, which is token
// Idx of sequence Seq.
type LayoutTarget struct {
	Row      int
	Tok      int32
	Seq, Idx int
}

// PackBatch validates a batch against the model's config and lays it out; weights may be nil.
func PackBatch(b *Batch, cfg Config, weights [][]float32) (*Layout, error) {
	pk, err := pack(b, cfg, weights)
	if err != nil {
		return nil, err
	}
	l := &Layout{
		Rows: pk.n, Prefix: pk.prefix, Tokens: pk.tokens, Embed: pk.embed, Pos: pk.pos,
		SeqLen: pk.seqLen, InvTemp: pk.invTemp, MRoPE: pk.mpos != nil, NonCausal: pk.ncEnd != nil,
	}
	for _, s := range pk.segs {
		l.Segments = append(l.Segments, LayoutSegment{R0: s.r0, R1: s.r1, Prefix: s.prefix})
	}
	for _, t := range pk.targets {
		l.Targets = append(l.Targets, LayoutTarget{Row: t.row, Tok: t.tok, Seq: t.seq, Idx: t.idx})
	}
	return l, nil
}
