package lora

import (
	"fmt"
	"math"
	"slices"
)

// layerCache holds one decoder block's activations, everything its backward needs.
type layerCache struct {
	xn1, rstd1, q, k, v, lse, ao, x2, xn2, rstd2, g, u, h []float32
	lu                                                    [7][]float32 // x A^T of each target (Targets order)
	gm                                                    *extraCache  // qwen3's and gemma3's extra activations, else nil
}

// extraCache: q and k before their per-head norms (QKNorm), gemma3's attention and FFN outputs
// before their post-norms, and the 1/rms of each norm; the fields a model does not use stay nil.
type extraCache struct {
	qpre, kpre, rstdq, rstdk, attnOut, rstdPA, ffnOut, rstdPF []float32
}

func extraCacheFloats(c Config) int64 {
	var f int64
	if c.QKNorm {
		f += int64(c.NHead*c.HeadDim + c.NHeadKV*c.HeadDim + c.NHead + c.NHeadKV)
	}
	if c.Gemma != nil {
		f += 2*int64(c.NEmbd) + 2
	}
	return f
}

func layerCacheFloats(c Config, rank, n int) int64 {
	E, Q, KV, F := int64(c.NEmbd), int64(c.NHead*c.HeadDim), int64(c.NHeadKV*c.HeadDim), int64(c.NFF)
	per := 3*E + 2 + 2*Q + 2*KV + int64(c.NHead) + 3*F + 7*int64(rank) + extraCacheFloats(c)
	return per * int64(n)
}

func newLayerCache(c Config, rank, n int) *layerCache {
	E, Q, KV, F := c.NEmbd, c.NHead*c.HeadDim, c.NHeadKV*c.HeadDim, c.NFF
	lc := &layerCache{
		xn1: make([]float32, n*E), rstd1: make([]float32, n), q: make([]float32, n*Q),
		k: make([]float32, n*KV), v: make([]float32, n*KV), lse: make([]float32, c.NHead*n),
		ao: make([]float32, n*Q), x2: make([]float32, n*E), xn2: make([]float32, n*E),
		rstd2: make([]float32, n), g: make([]float32, n*F), u: make([]float32, n*F), h: make([]float32, n*F),
	}
	for i := range lc.lu {
		lc.lu[i] = make([]float32, n*rank)
	}
	if c.QKNorm || c.Gemma != nil {
		lc.gm = &extraCache{}
	}
	if c.QKNorm {
		lc.gm.qpre, lc.gm.kpre = make([]float32, n*Q), make([]float32, n*KV)
		lc.gm.rstdq, lc.gm.rstdk = make([]float32, n*c.NHead), make([]float32, n*c.NHeadKV)
	}
	if c.Gemma != nil {
		lc.gm.attnOut, lc.gm.rstdPA = make([]float32, n*E), make([]float32, n)
		lc.gm.ffnOut, lc.gm.rstdPF = make([]float32, n*E), make([]float32, n)
	}
	return lc
}

// layerGrads is the backward's scratch for one block, reused across blocks.
type layerGrads struct {
	dx2, dxn, dq, dk, dv, dao, dg, du, dh, tmp []float32
	dE, dqpre, dkpre                           []float32 // through gemma3's post-norms and the q/k norms
}

func layerGradFloats(c Config, rank, n int) int64 {
	E, Q, KV, F := int64(c.NEmbd), int64(c.NHead*c.HeadDim), int64(c.NHeadKV*c.HeadDim), int64(c.NFF)
	extra := int64(0)
	if c.Gemma != nil {
		extra += E
	}
	if c.QKNorm {
		extra += Q + KV
	}
	return int64(n) * (2*E + 2*Q + 2*KV + 3*F + int64(rank) + extra)
}

func newLayerGrads(c Config, rank, n int) *layerGrads {
	E, Q, KV, F := c.NEmbd, c.NHead*c.HeadDim, c.NHeadKV*c.HeadDim, c.NFF
	gs := &layerGrads{
		dx2: make([]float32, n*E), dxn: make([]float32, n*E), dq: make([]float32, n*Q),
		dk: make([]float32, n*KV), dv: make([]float32, n*KV), dao: make([]float32, n*Q),
		dg: make([]float32, n*F), du: make([]float32, n*F), dh: make([]float32, n*F),
		tmp: make([]float32, n*max(rank, 1)),
	}
	if c.Gemma != nil {
		gs.dE = make([]float32, n*E)
	}
	if c.QKNorm {
		gs.dqpre, gs.dkpre = make([]float32, n*Q), make([]float32, n*KV)
	}
	return gs
}

// pass is the state of one forward (and backward) over a packed batch.
type pass struct {
	e       *CPU
	c       Config
	pk      *packed
	rope    *ropeTable // global layers' angles (M-RoPE angles for M-RoPE models)
	ropeSWA *ropeTable // gemma3's sliding-window layers' angles, or nil
	dims    attnDims
	scratch []float32 // attention scores (and their gradient in the backward)
	grads   *Adapter
}

// newAttnDims describes the packed batch's attention for the global layers.
func newAttnDims(c Config, pk *packed, workers int, f16 bool) attnDims {
	d := attnDims{n: pk.n, nh: c.NHead, nkv: c.NHeadKV, hd: c.HeadDim, workers: workers, f16: f16,
		scale: float32(1 / math.Sqrt(float64(c.HeadDim))), ncEnd: pk.ncEnd, pos: pk.pos}
	if c.Gemma != nil {
		d.scale = c.Gemma.QueryScale // llama.cpp scales q by it and uses kq_scale 1
	}
	return d
}

// layerRope and layerDims give layer il's RoPE angles and attention mask.
func (ps *pass) layerRope(il int) *ropeTable {
	if ps.c.IsSWA(il) {
		return ps.ropeSWA
	}
	return ps.rope
}

func (ps *pass) layerDims(il int) attnDims {
	d := ps.dims
	if ps.c.IsSWA(il) {
		d.window = ps.c.Gemma.SlidingWindow
	}
	return d
}

// lin returns the (adapted) projection of target t in layer il.
func (ps *pass) lin(il int, t string) *linear {
	c := ps.c
	in, out, _ := c.linearShape(t)
	l := &linear{w: ps.e.m.weight(il, t), in: in, out: out}
	ly := &ps.e.m.Layers[il]
	switch t {
	case "attn_q":
		l.bias = ly.Bq
	case "attn_k":
		l.bias = ly.Bk
	case "attn_v":
		l.bias = ly.Bv
	}
	if ps.e.ad != nil {
		if p := ps.e.ad.Lookup(il, t); p != nil {
			l.p, l.scale = p, ps.e.ad.Scale()
			l.grad = ps.grads.Lookup(il, t)
		}
	}
	return l
}

// layerForward runs decoder block il: y = x2 + ffn(norm(x2)), x2 = x + attn(norm(x)); qwen3 and
// gemma3 norm q and k per head, gemma3 also norms the attention and FFN outputs before each
// residual add.
func (ps *pass) layerForward(il int, x, y []float32, lc *layerCache) {
	c, n := ps.c, ps.pk.n
	ly := &ps.e.m.Layers[il]
	gm, gemma := lc.gm, c.Gemma != nil
	rmsnormForward(lc.xn1, lc.rstd1, x, ly.AttnNorm, n, c.NEmbd, c.RMSEps)
	q, k := lc.q, lc.k
	if c.QKNorm {
		q, k = gm.qpre, gm.kpre
	}
	ps.lin(il, "attn_q").forward(q, lc.xn1, lc.lu[0], n)
	ps.lin(il, "attn_k").forward(k, lc.xn1, lc.lu[1], n)
	ps.lin(il, "attn_v").forward(lc.v, lc.xn1, lc.lu[2], n)
	if c.QKNorm {
		rmsnormForward(lc.q, gm.rstdq, gm.qpre, ly.AttnQNorm, n*c.NHead, c.HeadDim, c.RMSEps)
		rmsnormForward(lc.k, gm.rstdk, gm.kpre, ly.AttnKNorm, n*c.NHeadKV, c.HeadDim, c.RMSEps)
	}
	rope := ps.layerRope(il)
	ropeApply(lc.q, rope, n, c.NHead, c.HeadDim, c.Rope, false)
	ropeApply(lc.k, rope, n, c.NHeadKV, c.HeadDim, c.Rope, false)
	if ps.dims.f16 {
		roundF16(lc.q)
		roundF16(lc.k)
		roundF16(lc.v)
	}
	if ps.e.emulateFlashAttn {
		pre, kq := float32(1), ps.dims.scale
		if c.Gemma != nil {
			pre, kq = kq, 1
		}
		attentionForwardFA(lc.ao, lc.q, lc.k, lc.v, ps.pk.segs, ps.layerDims(il), pre, kq)
	} else {
		attentionForward(lc.ao, lc.lse, lc.q, lc.k, lc.v, ps.pk.segs, ps.layerDims(il), ps.scratch)
	}
	if gemma {
		ps.lin(il, "attn_output").forward(gm.attnOut, lc.ao, lc.lu[3], n)
		rmsnormForward(lc.x2, gm.rstdPA, gm.attnOut, ly.PostAttnNorm, n, c.NEmbd, c.RMSEps)
	} else {
		ps.lin(il, "attn_output").forward(lc.x2, lc.ao, lc.lu[3], n)
	}
	for i, v := range x {
		lc.x2[i] += v
	}
	rmsnormForward(lc.xn2, lc.rstd2, lc.x2, ly.FFNNorm, n, c.NEmbd, c.RMSEps)
	ps.lin(il, "ffn_gate").forward(lc.g, lc.xn2, lc.lu[4], n)
	ps.lin(il, "ffn_up").forward(lc.u, lc.xn2, lc.lu[5], n)
	if gemma {
		gegluForward(lc.h, lc.g, lc.u, ps.dims.workers, ps.dims.f16)
		ps.lin(il, "ffn_down").forward(gm.ffnOut, lc.h, lc.lu[6], n)
		rmsnormForward(y, gm.rstdPF, gm.ffnOut, ly.PostFFNNorm, n, c.NEmbd, c.RMSEps)
	} else {
		swigluForward(lc.h, lc.g, lc.u, ps.dims.workers)
		ps.lin(il, "ffn_down").forward(y, lc.h, lc.lu[6], n)
	}
	for i, v := range lc.x2 {
		y[i] += v
	}
}

// layerBackward takes dy = d(loss)/d(block output) and writes dx = d(loss)/d(block input) (when dx
// is not nil), accumulating the block's LoRA gradients.
func (ps *pass) layerBackward(il int, x []float32, lc *layerCache, dy, dx []float32, gs *layerGrads) {
	c, n, f := ps.c, ps.pk.n, ps.e.fault
	ly := &ps.e.m.Layers[il]
	gm, gemma := lc.gm, c.Gemma != nil
	copy(gs.dx2, dy)
	clear(gs.dh)
	dDown := dy // d(loss)/d(ffn_down output)
	if gemma {
		clear(gs.dE)
		rmsnormBackward(gs.dE, dy, gm.ffnOut, ly.PostFFNNorm, gm.rstdPF, n, c.NEmbd)
		dDown = gs.dE
	}
	ps.lin(il, "ffn_down").backward(gs.dh, dDown, lc.h, lc.lu[6], gs.tmp, n, f)
	if gemma && f != faultGeluAsSilu {
		gegluBackward(gs.dg, gs.du, gs.dh, lc.g, lc.u, ps.dims.workers)
	} else {
		swigluBackward(gs.dg, gs.du, gs.dh, lc.g, lc.u, ps.dims.workers)
	}
	clear(gs.dxn)
	ps.lin(il, "ffn_gate").backward(gs.dxn, gs.dg, lc.xn2, lc.lu[4], gs.tmp, n, f)
	ps.lin(il, "ffn_up").backward(gs.dxn, gs.du, lc.xn2, lc.lu[5], gs.tmp, n, f)
	rmsnormBackward(gs.dx2, gs.dxn, lc.x2, ly.FFNNorm, lc.rstd2, n, c.NEmbd)
	dOut := gs.dx2 // d(loss)/d(attn_output output)
	if gemma {
		clear(gs.dE)
		rmsnormBackward(gs.dE, gs.dx2, gm.attnOut, ly.PostAttnNorm, gm.rstdPA, n, c.NEmbd)
		dOut = gs.dE
	}
	clear(gs.dao)
	ps.lin(il, "attn_output").backward(gs.dao, dOut, lc.ao, lc.lu[3], gs.tmp, n, f)
	clear(gs.dq)
	clear(gs.dk)
	clear(gs.dv)
	attentionBackward(gs.dq, gs.dk, gs.dv, gs.dao, lc.ao, lc.lse, lc.q, lc.k, lc.v, ps.pk.segs, ps.layerDims(il), ps.scratch)
	rope := ps.layerRope(il)
	ropeApply(gs.dq, rope, n, c.NHead, c.HeadDim, c.Rope, true)
	ropeApply(gs.dk, rope, n, c.NHeadKV, c.HeadDim, c.Rope, true)
	dq, dk := gs.dq, gs.dk
	if c.QKNorm && f != faultSkipQKNorm {
		clear(gs.dqpre)
		clear(gs.dkpre)
		rmsnormBackward(gs.dqpre, gs.dq, gm.qpre, ly.AttnQNorm, gm.rstdq, n*c.NHead, c.HeadDim)
		rmsnormBackward(gs.dkpre, gs.dk, gm.kpre, ly.AttnKNorm, gm.rstdk, n*c.NHeadKV, c.HeadDim)
		dq, dk = gs.dqpre, gs.dkpre
	}
	var dxn []float32
	if dx != nil {
		dxn = gs.dxn
		clear(dxn)
	}
	ps.lin(il, "attn_q").backward(dxn, dq, lc.xn1, lc.lu[0], gs.tmp, n, f)
	ps.lin(il, "attn_k").backward(dxn, dk, lc.xn1, lc.lu[1], gs.tmp, n, f)
	ps.lin(il, "attn_v").backward(dxn, gs.dv, lc.xn1, lc.lu[2], gs.tmp, n, f)
	if dx != nil {
		copy(dx, gs.dx2)
		rmsnormBackward(dx, dxn, x, ly.AttnNorm, lc.rstd1, n, c.NEmbd)
	}
}

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
func (e *CPU) forward(pk *packed, grads *Adapter, keep bool) *forwardState {
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
		if keep && !e.opt.Recompute {
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

// run executes the forward, the chunked log-softmax and (when grads != nil) the backward.
func (e *CPU) run(pk *packed, weights [][]float32, grads *Adapter, backward bool) *Result {
	c := e.m.Cfg
	n, E := pk.n, c.NEmbd
	backward = backward && grads != nil
	fs := e.forward(pk, grads, backward)
	var dxf []float32
	if backward {
		dxf = make([]float32, n*E)
	}
	res := &Result{Grads: grads, Tokens: n}
	res.LogProbs, res.Loss = e.head(pk, fs.xf, weights, dxf)
	if !backward {
		return res
	}
	ps := fs.ps
	dy := make([]float32, n*E)
	rmsnormBackward(dy, dxf, fs.x, e.m.OutNorm, fs.rstd, n, E)
	dx := make([]float32, n*E)
	gs := newLayerGrads(c, e.rank(), n)
	for il := c.NLayer - 1; il >= 0; il-- {
		lc := fs.shared
		if e.opt.Recompute {
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
	return res
}

// Logits returns the full logits of every position of one sequence ([tokens][vocab]): a diagnostic
// for parity tests on short inputs; training never materializes this matrix.
func (e *CPU) Logits(seq Sequence) ([][]float32, error) {
	seq.Mask = make([]bool, len(seq.Tokens))
	pk, err := pack(&Batch{Seqs: []Sequence{seq}}, e.m.Cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("logits: %w", err)
	}
	fs := e.forward(pk, nil, false)
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
	var loss float64
	for c0 := 0; c0 < len(rows); c0 += R {
		chunk := rows[c0:min(c0+R, len(rows))]
		m := len(chunk)
		for i, rt := range chunk {
			copy(xb[i*E:(i+1)*E], xf[rt.row*E:(rt.row+1)*E])
		}
		sgemm(false, true, m, V, E, pk.invTemp, xb, E, e.m.Output, E, 0, logits, V)
		parallelFor(m, e.opt.Threads, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				lg := logits[i*V : (i+1)*V]
				mx := slices.Max(lg)
				rt := chunk[i]
				// Keep the target logits: lg is overwritten with exp(lg - mx) below.
				tv := make([]float32, rt.t1-rt.t0)
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
