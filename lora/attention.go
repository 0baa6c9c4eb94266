package lora

import (
	"math"

	"github.com/vzlocal/vzlocal/internal/parallel"
)

// Attention over a packed batch. Rows [0, P) are the shared prompt (segment 0); every completion is a
// contiguous row range after it. A prompt row attends causally within the prompt; a completion row
// attends to the whole prompt and causally within its own range. This runs the prompt once for a
// GRPO group, and the prompt's K/V gradients collect the contributions of every completion.
//
// Query rows are processed in blocks of attnBlock rows; a block [a, b) of a segment needs the prompt
// keys and its own segment's keys [0, b) only, so the fully masked upper part of the score matrix is
// never computed (about half the work of a long segment).

// attnBlock is a variable so that tests can exercise many blocks on short sequences.
var attnBlock = 256

// segment is a range of query rows and the prompt prefix it sees (prefix = 0 for the prompt itself).
type segment struct {
	r0, r1 int
	prefix int
}

// attnDims describes q/k/v layout: q [n][nh*hd], k and v [n][nkv*hd], and the mask beyond
// causality: non-causal spans and a sliding window.
type attnDims struct {
	n, nh, nkv, hd int
	workers        int
	f16            bool    // test hook: round probabilities to f16 like llama.cpp's F16 KV-cache matmuls
	scale          float32 // scores are q k^T * scale
	// ncEnd (nil: none) gives each row in a non-causal span the end row of its span: the row sees
	// its segment's keys up to there instead of up to itself.
	ncEnd []int32
	// window > 0 (a sliding-window layer): a query at position pos[q] sees a key at pos[k] only if
	// pos[q] - pos[k] < window (llama.cpp's LLAMA_SWA_TYPE_STANDARD).
	window int
	pos    []int32
}

// rowEnd is the end (exclusive, local to segment sg) of the segment keys that local row i sees.
func (d attnDims) rowEnd(sg segment, i int) int {
	if d.ncEnd != nil {
		if e := int(d.ncEnd[sg.r0+i]); e > 0 {
			return e - sg.r0
		}
	}
	return i + 1
}

// attnBlocks calls fn for every query block of every segment: local rows [a, b) of segment sg,
// which see the segment's keys [0, kb) (kb = b unless a non-causal span reaches further).
func (d attnDims) attnBlocks(segs []segment, fn func(sg segment, a, b, kb int)) {
	for _, sg := range segs {
		m := sg.r1 - sg.r0
		for a := 0; a < m; a += attnBlock {
			b := min(a+attnBlock, m)
			kb := b
			for i := a; i < b && d.ncEnd != nil; i++ {
				kb = max(kb, d.rowEnd(sg, i))
			}
			fn(sg, a, b, kb)
		}
	}
}

// attnScratch is the largest score block: attnBlock rows by (prefix + visible segment keys).
func (d attnDims) attnScratch(segs []segment) int {
	most := 0
	d.attnBlocks(segs, func(sg segment, a, b, kb int) { most = max(most, (b-a)*(sg.prefix+kb)) })
	return most
}

// swaMasked reports whether key j of a score row (j < prefix: prompt row j; else segment row
// j - prefix) is outside the sliding window of query row q.
func (d attnDims) swaMasked(sg segment, q, j int) bool {
	if d.window <= 0 {
		return false
	}
	kr := j
	if j >= sg.prefix {
		kr = sg.r0 + j - sg.prefix
	}
	return int(d.pos[q])-int(d.pos[kr]) >= d.window
}

// scores fills s ((b-a) x nk, nk = prefix + kb) with scale * q_h k_hk^T for query rows [a, b) of
// a segment, masks what a row may not see and turns each row into probabilities (masked entries
// exactly 0); lse[i] gets row i's log-sum-exp of the scaled scores, unless useLSE, in which case the
// stored lse rebuilds the probabilities (the backward's recomputation).
func (d attnDims) scores(s, q, k []float32, sg segment, a, b, kb, h int, lse []float32, useLSE bool) {
	m, p := b-a, sg.prefix
	nk := p + kb
	hk := h / (d.nh / d.nkv)
	qs, ks := d.nh*d.hd, d.nkv*d.hd
	qh := q[(sg.r0+a)*qs+h*d.hd:]
	if p > 0 {
		sgemm(false, true, m, p, d.hd, d.scale, qh, qs, k[hk*d.hd:], ks, 0, s, nk)
	}
	sgemm(false, true, m, kb, d.hd, d.scale, qh, qs, k[sg.r0*ks+hk*d.hd:], ks, 0, s[p:], nk)
	parallel.For(m, d.workers, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := s[i*nk : (i+1)*nk]
			valid := p + d.rowEnd(sg, a+i) // keys [0, valid) are visible, less the window's
			qr := sg.r0 + a + i
			if useLSE {
				l := lse[i]
				for j := 0; j < valid; j++ {
					if d.swaMasked(sg, qr, j) {
						row[j] = 0
					} else {
						row[j] = exp32(row[j] - l)
					}
				}
			} else {
				mx := float32(math.Inf(-1))
				for j, v := range row[:valid] {
					if !d.swaMasked(sg, qr, j) {
						mx = max(mx, v)
					}
				}
				var sum float32
				for j := 0; j < valid; j++ {
					if d.swaMasked(sg, qr, j) {
						row[j] = 0
						continue
					}
					e := exp32(row[j] - mx)
					row[j] = e
					sum += e
				}
				inv := 1 / sum
				for j := 0; j < valid; j++ {
					row[j] *= inv
				}
				lse[i] = mx + float32(math.Log(float64(sum)))
			}
			clear(row[valid:])
		}
	})
	if d.f16 && !useLSE {
		roundF16(s[:m*nk])
	}
}

// attentionForward computes o [n][nh*hd] = softmax(q k^T * scale) v for every segment and head;
// lse [nh][n] keeps each row's log-sum-exp so the backward can rebuild the probabilities.
func attentionForward(o, lse, q, k, v []float32, segs []segment, d attnDims, scratch []float32) {
	qs, ks := d.nh*d.hd, d.nkv*d.hd
	d.attnBlocks(segs, func(sg segment, a, b, kb int) {
		m, p := b-a, sg.prefix
		nk := p + kb
		s := scratch[:m*nk]
		for h := 0; h < d.nh; h++ {
			hk := h / (d.nh / d.nkv)
			d.scores(s, q, k, sg, a, b, kb, h, lse[h*d.n+sg.r0+a:], false)
			oh := o[(sg.r0+a)*qs+h*d.hd:]
			beta := float32(0)
			if p > 0 {
				sgemm(false, false, m, d.hd, p, 1, s, nk, v[hk*d.hd:], ks, 0, oh, qs)
				beta = 1
			}
			sgemm(false, false, m, d.hd, kb, 1, s[p:], nk, v[sg.r0*ks+hk*d.hd:], ks, beta, oh, qs)
		}
	})
}

// attentionBackward accumulates dq, dk, dv from do, recomputing the probabilities from lse.
// With P the probabilities: dV += P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dO * O)),
// dQ += scale * dS K, dK += scale * dS^T Q.
func attentionBackward(dq, dk, dv, do, o, lse, q, k, v []float32, segs []segment, d attnDims, scratch []float32) {
	scale := d.scale
	qs, ks := d.nh*d.hd, d.nkv*d.hd
	d.attnBlocks(segs, func(sg segment, a, b, kb int) {
		m, p := b-a, sg.prefix
		nk := p + kb
		s, dp := scratch[:m*nk], scratch[m*nk:2*m*nk]
		for h := 0; h < d.nh; h++ {
			hk := h / (d.nh / d.nkv)
			d.scores(s, q, k, sg, a, b, kb, h, lse[h*d.n+sg.r0+a:], true)
			off := (sg.r0+a)*qs + h*d.hd
			doh, oh, qh := do[off:], o[off:], q[off:]
			own := sg.r0*ks + hk*d.hd // this segment's own keys and values in k and v
			// dV and dP against the prompt keys, then against the segment's own keys [0, kb).
			if p > 0 {
				sgemm(true, false, p, d.hd, m, 1, s, nk, doh, qs, 1, dv[hk*d.hd:], ks)
				sgemm(false, true, m, p, d.hd, 1, doh, qs, v[hk*d.hd:], ks, 0, dp, nk)
			}
			sgemm(true, false, kb, d.hd, m, 1, s[p:], nk, doh, qs, 1, dv[own:], ks)
			sgemm(false, true, m, kb, d.hd, 1, doh, qs, v[own:], ks, 0, dp[p:], nk)
			parallel.For(m, d.workers, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					var dot float32
					dr, or := doh[i*qs:i*qs+d.hd], oh[i*qs:i*qs+d.hd]
					for j := range dr {
						dot += dr[j] * or[j]
					}
					valid := p + d.rowEnd(sg, a+i) // masked entries have P = 0, hence dS = 0 (already)
					srow, dprow := s[i*nk:i*nk+valid], dp[i*nk:i*nk+valid]
					for j := range srow {
						srow[j] = srow[j] * (dprow[j] - dot) // dS, reusing s
					}
				}
			})
			if p > 0 {
				sgemm(false, false, m, d.hd, p, scale, s, nk, k[hk*d.hd:], ks, 1, dq[off:], qs)
				sgemm(true, false, p, d.hd, m, scale, s, nk, qh, qs, 1, dk[hk*d.hd:], ks)
			}
			sgemm(false, false, m, d.hd, kb, scale, s[p:], nk, k[own:], ks, 1, dq[off:], qs)
			sgemm(true, false, kb, d.hd, m, scale, s[p:], nk, qh, qs, 1, dk[own:], ks)
		}
	})
}
