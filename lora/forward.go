package lora

import (
	"fmt"
	"math"
	"slices"

	"github.com/vzlocal/vzlocal/internal/parallel"
)

// forwardState is what the forward leaves for the head and the backward.
type forwardState struct {
	ps       *pass
	inputs   [][]float32 // each block's input (backward only)
	caches   []*layerCache
	shared   *layerCache
	spare    []float32
	x        []float32 // last block's output
	xf, rstd []float32 // final-norm output and its 1/rms
}

// forward runs the embedding, every block and the final norm. With keep, block inputs (and, without
// Recompute, block activations) are kept for the backward.
func (e *CPU) forward(pk *packed, grads *Adapter, keep, recompute bool) *forwardState {
	SetThreads(e.opt.Threads)
	c := e.m.Cfg
	n, E := pk.n, c.NEmbd
	dims := newAttnDims(c, pk, e.opt.Threads, e.emulateF16KV)
	ps := &pass{e: e, c: c, pk: pk, dims: dims, scratch: make([]float32, 2*dims.attnScratch(pk.segs)), grads: grads}
	if pk.mpos != nil {
		ps.rope = newMRopeTable(c, pk.mpos)
	} else {
		ps.rope = newRopeTable(c, pk.pos, c.RopeBase, c.RopeScale)
	}
	if c.Gemma != nil && c.Gemma.SlidingWindow > 0 {
		ps.ropeSWA = newRopeTable(c, pk.pos, c.Gemma.SWARopeBase, 1)
	}
	rank := e.rank()
	fs := &forwardState{ps: ps, shared: newLayerCache(c, rank, n), spare: make([]float32, n*E)}
	x := make([]float32, n*E)
	for r := 0; r < n; r++ {
		if pk.embed[r] != nil {
			copy(x[r*E:(r+1)*E], pk.embed[r])
		} else {
			t := int(pk.tokens[r])
			copy(x[r*E:(r+1)*E], e.m.TokEmbd[t*E:(t+1)*E])
			if c.Gemma != nil { // token rows only: llama.cpp leaves image rows unscaled
				for j := r * E; j < (r+1)*E; j++ {
					x[j] *= c.Gemma.EmbedScale
				}
			}
		}
	}
	for il := 0; il < c.NLayer; il++ {
		lc := fs.shared
		if keep && !recompute {
			lc = newLayerCache(c, rank, n)
			fs.caches = append(fs.caches, lc)
		}
		var y []float32
		if keep {
			fs.inputs = append(fs.inputs, x)
			y = make([]float32, n*E)
		} else {
			y = fs.spare
		}
		ps.layerForward(il, x, y, lc)
		if !keep {
			fs.spare = x
		}
		x = y
	}
	fs.x = x
	fs.xf, fs.rstd = make([]float32, n*E), make([]float32, n)
	rmsnormForward(fs.xf, fs.rstd, x, e.m.OutNorm, n, E, c.RMSEps)
	return fs
}

// run executes the forward, the chunked log-softmax and (when grads != nil) the backward. With
// weigh set, the loss weights are weigh(log-probs of the forward) instead of weights, and the head
// runs twice: once for the log-probs, once for the loss and its gradient.
func (e *CPU) run(pk *packed, weights [][]float32, weigh func([][]float32) ([][]float32, error), grads *Adapter,
	backward, recompute bool) (*Result, error) {
	c := e.m.Cfg
	n, E := pk.n, c.NEmbd
	backward = backward && grads != nil
	fs := e.forward(pk, grads, backward, recompute)
	if weigh != nil {
		lp, _ := e.head(pk, fs.xf, nil, nil)
		var err error
		if weights, err = weigh(lp); err != nil {
			return nil, err
		}
	}
	var dxf []float32
	if backward {
		dxf = make([]float32, n*E)
	}
	res := &Result{Grads: grads, Tokens: n}
	res.LogProbs, res.Loss = e.head(pk, fs.xf, weights, dxf)
	if !backward {
		return res, nil
	}
	ps := fs.ps
	dy := make([]float32, n*E)
	rmsnormBackward(dy, dxf, fs.x, e.m.OutNorm, fs.rstd, n, E)
	dx := make([]float32, n*E)
	gs := newLayerGrads(c, e.rank(), n)
	for il := c.NLayer - 1; il >= 0; il-- {
		lc := fs.shared
		if recompute {
			ps.layerForward(il, fs.inputs[il], fs.spare, lc) // rebuild the block's activations
		} else {
			lc = fs.caches[il]
		}
		out := dx
		if il == 0 {
			out = nil // the input embeddings are constants: no need for their gradient
		}
		ps.layerBackward(il, fs.inputs[il], lc, dy, out, gs)
		dy, dx = dx, dy
	}
	return res, nil
}

// Logits returns the full logits of every position of one sequence ([tokens][vocab]): a diagnostic
// for parity tests on short inputs; training never materializes this matrix.
func (e *CPU) Logits(seq Sequence) ([][]float32, error) {
	seq.Mask = make([]bool, len(seq.Tokens))
	pk, err := pack(&Batch{Seqs: []Sequence{seq}}, e.m.Cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("logits: %w", err)
	}
	fs := e.forward(pk, nil, false, false)
	c := e.m.Cfg
	out := make([][]float32, pk.n)
	for r := range out {
		out[r] = make([]float32, c.NVocab)
		sgemm(false, true, 1, c.NVocab, c.NEmbd, 1, fs.xf[r*c.NEmbd:], c.NEmbd, e.m.Output, c.NEmbd, 0, out[r], c.NVocab)
	}
	return out, nil
}

// head computes log p(target) for every scored row in chunks of HeadChunk rows (never a full
// [rows x vocab] matrix) and, when dxf is not nil, d(loss)/d(xf) with loss = sum w_t logp_t:
// d logp / d logits = onehot(token) - softmax(logits).
func (e *CPU) head(pk *packed, xf []float32, weights [][]float32, dxf []float32) ([][]float32, float64) {
	c := e.m.Cfg
	E, V := c.NEmbd, c.NVocab
	lp := make([][]float32, len(pk.seqLen))
	for s, n := range pk.seqLen {
		lp[s] = make([]float32, n)
	}
	// Unique scored rows, each with its targets (pk.targets is sorted by row).
	type rowTargets struct {
		row    int
		t0, t1 int
	}
	var rows []rowTargets
	for i := 0; i < len(pk.targets); {
		j := i
		for j < len(pk.targets) && pk.targets[j].row == pk.targets[i].row {
			j++
		}
		rows = append(rows, rowTargets{pk.targets[i].row, i, j})
		i = j
	}
	R := e.opt.HeadChunk
	xb := make([]float32, R*E)
	logits := make([]float32, R*V)
	dxb := make([]float32, R*E)
	rowLoss := make([]float64, R)
	targetLogits := make([]float32, len(pk.targets)) // rows own disjoint ranges: safe across workers
	var loss float64
	for c0 := 0; c0 < len(rows); c0 += R {
		chunk := rows[c0:min(c0+R, len(rows))]
		m := len(chunk)
		for i, rt := range chunk {
			copy(xb[i*E:(i+1)*E], xf[rt.row*E:(rt.row+1)*E])
		}
		sgemm(false, true, m, V, E, pk.invTemp, xb, E, e.m.Output, E, 0, logits, V)
		parallel.For(m, e.opt.Threads, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				lg := logits[i*V : (i+1)*V]
				mx := slices.Max(lg)
				rt := chunk[i]
				// Keep the target logits: lg is overwritten with exp(lg - mx) below.
				tv := targetLogits[rt.t0:rt.t1]
				for k, t := range pk.targets[rt.t0:rt.t1] {
					tv[k] = lg[t.tok]
				}
				var sum float64
				for j, v := range lg {
					ev := exp32(v - mx)
					lg[j] = ev
					sum += float64(ev)
				}
				lse := float64(mx) + math.Log(sum)
				rowLoss[i] = 0
				var wsum float64
				for k, t := range pk.targets[rt.t0:rt.t1] {
					l := float32(float64(tv[k]) - lse)
					lp[t.seq][t.idx] = l
					if weights != nil {
						w := float64(weights[t.seq][t.idx])
						rowLoss[i] += w * float64(l)
						wsum += w
					}
				}
				if dxf == nil {
					continue
				}
				if e.fault == faultDropSoftmax {
					clear(lg)
				} else {
					f := float32(-wsum / sum)
					for j := range lg {
						lg[j] *= f
					}
				}
				for _, t := range pk.targets[rt.t0:rt.t1] {
					lg[t.tok] += weights[t.seq][t.idx]
				}
			}
		})
		for i := 0; i < m; i++ {
			loss += rowLoss[i]
		}
		if dxf != nil {
			sgemm(false, false, m, E, V, pk.invTemp, logits, V, e.m.Output, E, 0, dxb, E)
			for i, rt := range chunk {
				d := dxf[rt.row*E : (rt.row+1)*E]
				for j, v := range dxb[i*E : (i+1)*E] {
					d[j] += v
				}
			}
		}
	}
	return lp, loss
}
