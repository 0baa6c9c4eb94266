package lora

import (
	"math"
)

// Attention over a packed batch. Rows [0, P) are the shared prompt (segment 0); every completion is a
// contiguous row range after it. A prompt row attends causally within the prompt; a completion row
// attends to the whole prompt and causally within its own range. This runs the prompt once for a
// GRPO group, and the prompt's K/V gradients collect the contributions of every completion.

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

// scores fills s (m x nk, nk = prefix + m) with scale * q_h k_hk^T for one segment and head, masks
// the future with -inf, and turns each row into probabilities; lse[i] gets the row's log-sum-exp
// (of the scaled scores) unless useLSE, in which case the stored lse is used (the backward's recompute).
func (d attnDims) scores(s, q, k []float32, sg segment, h int, scale float32, lse []float32, useLSE bool) {
	m, p := sg.r1-sg.r0, sg.prefix
	nk := p + m
	hk := h / (d.nh / d.nkv)
	qs, ks := d.nh*d.hd, d.nkv*d.hd
	qh := q[sg.r0*qs+h*d.hd:]
	if p > 0 {
		sgemm(false, true, m, p, d.hd, scale, qh, qs, k[hk*d.hd:], ks, 0, s, nk)
	}
	sgemm(false, true, m, m, d.hd, scale, qh, qs, k[sg.r0*ks+hk*d.hd:], ks, 0, s[p:], nk)
	defer func() {
		if d.f16 && !useLSE {
			roundF16(s[:m*nk])
		}
	}()
	parallelFor(m, d.workers, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := s[i*nk : (i+1)*nk]
			valid := p + i + 1 // keys [0, valid) are visible
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
}

// attentionForward computes o [n][nh*hd] = softmax(q k^T * scale) v for every segment and head;
// lse [nh][n] keeps each row's log-sum-exp so the backward can rebuild the probabilities.
func attentionForward(o, lse, q, k, v []float32, segs []segment, d attnDims, scratch []float32) {
	scale := float32(1 / math.Sqrt(float64(d.hd)))
	qs, ks := d.nh*d.hd, d.nkv*d.hd
	for _, sg := range segs {
		m, p := sg.r1-sg.r0, sg.prefix
		nk := p + m
		s := scratch[:m*nk]
		for h := 0; h < d.nh; h++ {
			hk := h / (d.nh / d.nkv)
			d.scores(s, q, k, sg, h, scale, lse[h*d.n+sg.r0:], false)
			oh := o[sg.r0*qs+h*d.hd:]
			if p > 0 {
				sgemm(false, false, m, d.hd, p, 1, s, nk, v[hk*d.hd:], ks, 0, oh, qs)
				sgemm(false, false, m, d.hd, m, 1, s[p:], nk, v[sg.r0*ks+hk*d.hd:], ks, 1, oh, qs)
			} else {
				sgemm(false, false, m, d.hd, m, 1, s, nk, v[sg.r0*ks+hk*d.hd:], ks, 0, oh, qs)
			}
		}
	}
}

// attentionBackward accumulates dq, dk, dv from do, recomputing the probabilities from lse.
// With P the probabilities: dV += P^T dO, dP = dO V^T, dS = P * (dP - rowsum(dO * O)),
// dQ += scale * dS K, dK += scale * dS^T Q.
func attentionBackward(dq, dk, dv, do, o, lse, q, k, v []float32, segs []segment, d attnDims, scratch []float32) {
	scale := float32(1 / math.Sqrt(float64(d.hd)))
	qs, ks := d.nh*d.hd, d.nkv*d.hd
	for _, sg := range segs {
		m, p := sg.r1-sg.r0, sg.prefix
		nk := p + m
		s, dp := scratch[:m*nk], scratch[m*nk:2*m*nk]
		for h := 0; h < d.nh; h++ {
			hk := h / (d.nh / d.nkv)
			d.scores(s, q, k, sg, h, scale, lse[h*d.n+sg.r0:], true)
			doh, oh, qh := do[sg.r0*qs+h*d.hd:], o[sg.r0*qs+h*d.hd:], q[sg.r0*qs+h*d.hd:]
			// dV and dP against the prompt keys, then against the segment's own keys.
			if p > 0 {
				sgemm(true, false, p, d.hd, m, 1, s, nk, doh, qs, 1, dv[hk*d.hd:], ks)
				sgemm(false, true, m, p, d.hd, 1, doh, qs, v[hk*d.hd:], ks, 0, dp, nk)
			}
			sgemm(true, false, m, d.hd, m, 1, s[p:], nk, doh, qs, 1, dv[sg.r0*ks+hk*d.hd:], ks)
			sgemm(false, true, m, m, d.hd, 1, doh, qs, v[sg.r0*ks+hk*d.hd:], ks, 0, dp[p:], nk)
			parallelFor(m, d.workers, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					var dot float32
					dr, or := doh[i*qs:i*qs+d.hd], oh[i*qs:i*qs+d.hd]
					for j := range dr {
						dot += dr[j] * or[j]
					}
					valid := p + i + 1 // masked entries have P = 0, hence dS = 0 (already)
					srow, dprow := s[i*nk:i*nk+valid], dp[i*nk:i*nk+valid]
					for j := range srow {
						srow[j] = srow[j] * (dprow[j] - dot) // dS, reusing s
					}
				}
			})
			if p > 0 {
				sgemm(false, false, m, d.hd, p, scale, s, nk, k[hk*d.hd:], ks, 1, dq[sg.r0*qs+h*d.hd:], qs)
				sgemm(true, false, p, d.hd, m, scale, s, nk, qh, qs, 1, dk[hk*d.hd:], ks)
			}
			sgemm(false, false, m, d.hd, m, scale, s[p:], nk, k[sg.r0*ks+hk*d.hd:], ks, 1, dq[sg.r0*qs+h*d.hd:], qs)
			sgemm(true, false, m, d.hd, m, scale, s[p:], nk, qh, qs, 1, dk[sg.r0*ks+hk*d.hd:], ks)
		}
	}
}
