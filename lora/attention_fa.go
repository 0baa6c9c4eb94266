package lora

import (
	"math"

	"github.com/x448/float16"
)

// attentionForwardFA emulates llama.cpp's CPU flash attention (ggml_compute_forward_flash_attn_ext_f16
// with an F16 KV cache), a forward-only test hook that lets parity tests against the rollout engine
// (which runs with flash attention on) use tight bounds: q is rounded to f16 after its pre-scale,
// keys are visited in row order with an online softmax, and the V accumulator is kept in f16, rounded
// after every scale and multiply-add as ggml_vec_scale_f16 and ggml_vec_mad_f16 do. k and v must
// already be f16-rounded. preScale multiplies q before rounding (gemma3 scales q in the graph and
// runs the kernel with scale 1); kqScale multiplies each score.
func attentionForwardFA(o, q, k, v []float32, segs []segment, d attnDims, preScale, kqScale float32) {
	qs, ks := d.nh*d.hd, d.nkv*d.hd
	r16 := func(x float32) float32 { return float16.Fromfloat32(x).Float32() }
	qh := make([]float32, d.hd)
	acc := make([]float32, d.hd)
	for _, sg := range segs {
		p := sg.prefix
		for i := 0; i < sg.r1-sg.r0; i++ {
			qr := sg.r0 + i
			valid := p + d.rowEnd(sg, i)
			for h := 0; h < d.nh; h++ {
				hk := h / (d.nh / d.nkv)
				for j := range qh {
					qh[j] = r16(q[qr*qs+h*d.hd+j] * preScale)
				}
				clear(acc)
				S, M := float32(0), float32(math.Inf(-1))
				for j := 0; j < valid; j++ {
					if d.swaMasked(sg, qr, j) {
						continue
					}
					kr := j
					if j >= p {
						kr = sg.r0 + j - p
					}
					kv := k[kr*ks+hk*d.hd : kr*ks+(hk+1)*d.hd]
					var dot float64
					for x := range qh {
						dot += float64(qh[x]) * float64(kv[x])
					}
					s := float32(dot) * kqScale
					ms, vs := float32(1), float32(1)
					if s > M {
						ms = float32(math.Exp(float64(M - s)))
						M = s
						for x := range acc {
							acc[x] = r16(acc[x] * ms)
						}
					} else {
						vs = float32(math.Exp(float64(s - M)))
					}
					vv := v[kr*ks+hk*d.hd : kr*ks+(hk+1)*d.hd]
					for x := range acc {
						acc[x] = r16(acc[x] + vv[x]*vs)
					}
					S = S*ms + vs
				}
				out := o[qr*qs+h*d.hd : qr*qs+(h+1)*d.hd]
				for x := range out {
					out[x] = acc[x] / S
				}
			}
		}
	}
}
