package cuda

import (
	"fmt"
	"runtime"

	"github.com/vzlocal/vzlocal/internal/parallel"
	"github.com/vzlocal/vzlocal/lora"
)

// packed is a batch in the device engine's flat form, built from lora.PackBatch's layout (the CPU
// engine's own rules: the longest common prefix once, then each sequence's remainder).
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

// packBatch lays the batch out and gathers its input rows into rows(n) (n rows of NEmbd floats:
// the engine's page-locked buffer), or a fresh slice when rows is nil.
func packBatch(b *lora.Batch, m *lora.Model, weights [][]float32, rows func(n int) ([]float32, error)) (*packed, error) {
	pk, l, err := layoutBatch(b, m.Cfg, weights)
	if err != nil {
		return nil, err
	}
	E := m.Cfg.NEmbd
	if rows == nil {
		pk.x0 = make([]float32, l.Rows*E)
	} else if pk.x0, err = rows(l.Rows); err != nil {
		return nil, err
	}
	// In parallel: at 7B a 4,096-row batch is 58 MB of rows, several milliseconds for one core,
	// while the GPU waits for them; each goroutine at least a few MB (a small batch stays on the
	// caller's goroutine).
	workers := min(runtime.GOMAXPROCS(0), max(1, l.Rows*E/(1<<20)))
	parallel.For(l.Rows, workers, func(r0, r1 int) {
		for r := r0; r < r1; r++ {
			src := l.Embed[r]
			if src == nil {
				t := int(l.Tokens[r])
				src = m.TokEmbd[t*E : (t+1)*E]
			}
			copy(pk.x0[r*E:(r+1)*E], src)
		}
	})
	return pk, nil
}

// layoutBatch is packBatch without the input rows (x0 stays nil): the rows, segments and targets
// that size the workspace, for MemoryEstimate (at 7B a GRPO group's input rows are 73 MB).
func layoutBatch(b *lora.Batch, c lora.Config, weights [][]float32) (*packed, *lora.Layout, error) {
	l, err := lora.PackBatch(b, c, weights)
	if err != nil {
		return nil, nil, err
	}
	if l.MRoPE || l.NonCausal {
		return nil, nil, fmt.Errorf("%w: M-RoPE positions and non-causal image spans run on the CPU engine only", ErrUnsupported)
	}
	pk := &packed{n: l.Rows, prefix: l.Prefix, pos: l.Pos, seqLen: l.SeqLen, invTemp: l.InvTemp}
	for _, sg := range l.Segments {
		pk.seg = append(pk.seg, int32(sg.R0), int32(sg.R1), int32(sg.Prefix))
	}
	for _, t := range l.Targets {
		pk.tRow = append(pk.tRow, int32(t.Row))
		pk.tTok = append(pk.tTok, t.Tok)
		pk.tSeq = append(pk.tSeq, t.Seq)
		pk.tIdx = append(pk.tIdx, t.Idx)
	}
	return pk, l, nil
}
