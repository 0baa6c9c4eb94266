package lora

import (
	"math"
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

// attnDims describes q/k/v layout: q [n][nh*hd], k and v [n][nkv*hd].
type attnDims struct {
	n, nh, nkv, hd int
	workers        int
	f16            bool // test hook: round probabilities to f16 like llama.cpp's F16 KV-cache matmuls
}

// attnBlocks calls fn for every query block of every segment: local rows [a, b) of segment sg.
func attnBlocks(segs []segment, fn func(sg segment, a, b int)) {
	for _, sg := range segs {
		m := sg.r1 - sg.r0
		for a := 0; a < m; a += attnBlock {
			fn(sg, a, min(a+attnBlock, m))
		}
	}
}

// attnScratch is the largest score block: attnBlock rows by (prefix + segment length) keys.
func attnScratch(segs []segment) int {
	most := 0
	attnBlocks(segs, func(sg segment, a, b int) { most = max(most, (b-a)*(sg.prefix+b)) })
	return most
}

// scores fills s ((b-a) x nk, nk = prefix + b) with scale * q_h k_hk^T for query rows [a, b) of a
// segment, masks the future and turns each row into probabilities; lse[i] gets row i's log-sum-exp
// of the scaled scores, unless useLSE, in which case the stored lse rebuilds the probabilities (the
// backward's recomputation).
func (d attnDims) scores(s, q, k []float32, sg segment, a, b, h int, scale float32, lse []float32, useLSE bool) {
	m, p := b-a, sg.prefix
	nk := p + b
	hk := h / (d.nh / d.nkv)
	qs, ks := d.nh*d.hd, d.nkv*d.hd
	qh := q[(sg.r0+a)*qs+h*d.hd:]
	if p > 0 {
		sgemm(false, true, m, p, d.hd, scale, qh, qs, k[hk*d.hd:], ks, 0, s, nk)
	}
	sgemm(false, true, m, b, d.hd, scale, qh, qs, k[sg.r0*ks+hk*d.hd:], ks, 0, s[p:], nk)
	parallelFor(m, d.workers, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := s[i*nk : (i+1)*nk]
			valid := p + a + i + 1 // keys [0, valid) are visible
			if useLSE {
				l := lse[i]
				for j := 0; j < valid; j++ {
					row[j] = exp32(row[j] - l)
				}
			} else {
				mx := float32(math.Inf(-1))
				for _, v := range row[:valid] {
					mx = max(mx, v)
				}
				var sum float32
				for j := 0; j < valid; j++ {
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
	scale := float32(1 / math.Sqrt(float64(d.hd)))
	qs, ks := d.nh*d.hd, d.nkv*d.hd
	attnBlocks(segs, func(sg segment, a, b int) {
		m, p := b-a, sg.prefix
		nk := p + b
		s := scratch[:m*nk]
		for h := 0; h < d.nh; h++ {
			hk := h / (d.nh / d.nkv)
			d.scores(s, q, k, sg, a, b, h, scale, lse[h*d.n+sg.r0+a:], false)
			oh := o[(sg.r0+a)*qs+h*d.hd:]
			beta := float32(0)
			if p > 0 {
				sgemm(false, false, m, d.hd, p, 1, s, nk, v[hk*d.hd:], ks, 0, oh, qs)
				beta = 1
			}
			sgemm(false, false, m, d.hd, b, 1, s[p:], nk, v[sg.r0*ks+hk*d.hd:], ks, beta, oh, qs)
		}
	})
}

// attentionBackward accumulates dq, dk, dv from do, recomputing the probabilities from lse.
// With P the probabilities: dV += P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dO * O)),
// dQ += scale * dS K, dK += scale * dS^T Q.
func attentionBackward(dq, dk, dv, do, o, lse, q, k, v []float32, segs []segment, d attnDims, scratch []float32) {
	scale := float32(1 / math.Sqrt(float64(d.hd)))
	qs, ks := d.nh*d.hd, d.nkv*d.hd
	attnBlocks(segs, func(sg segment, a, b int) {
		m, p := b-a, sg.prefix
		nk := p + b
		s, dp := scratch[:m*nk], scratch[m*nk:2*m*nk]
		for h := 0; h < d.nh; h++ {
			hk := h / (d.nh / d.nkv)
			d.scores(s, q, k, sg, a, b, h, scale, lse[h*d.n+sg.r0+a:], true)
			off := (sg.r0+a)*qs + h*d.hd
			doh, oh, qh := do[off:], o[off:], q[off:]
			kOwn, vOwn := sg.r0*ks+hk*d.hd, sg.r0*ks+hk*d.hd
			// dV and dP against the prompt keys, then against the segment's own keys [0, b).
			if p > 0 {
				sgemm(true, false, p, d.hd, m, 1, s, nk, doh, qs, 1, dv[hk*d.hd:], ks)
				sgemm(false, true, m, p, d.hd, 1, doh, qs, v[hk*d.hd:], ks, 0, dp, nk)
			}
			sgemm(true, false, b, d.hd, m, 1, s[p:], nk, doh, qs, 1, dv[vOwn:], ks)
			sgemm(false, true, m, b, d.hd, 1, doh, qs, v[vOwn:], ks, 0, dp[p:], nk)
			parallelFor(m, d.workers, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					var dot float32
					dr, or := doh[i*qs:i*qs+d.hd], oh[i*qs:i*qs+d.hd]
					for j := range dr {
						dot += dr[j] * or[j]
					}
					valid := p + a + i + 1 // masked entries have P = 0, hence dS = 0 (already)
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
			sgemm(false, false, m, d.hd, b, scale, s[p:], nk, k[kOwn:], ks, 1, dq[off:], qs)
			sgemm(true, false, b, d.hd, m, scale, s[p:], nk, qh, qs, 1, dk[kOwn:], ks)
		}
	})
}
