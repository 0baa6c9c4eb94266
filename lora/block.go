package lora

import "math"

// One decoder block: its forward and backward over a packed batch (llm.c style, explicit buffers).

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
	in, out, _ := c.LinearShape(t)
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
