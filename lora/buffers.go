package lora

// Per-block activation and gradient buffers: what one decoder block keeps for its backward, and
// the backward's scratch.

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
