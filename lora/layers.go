package lora

import (
	"math"

	"github.com/x448/float16"

	"github.com/vzlocal/vzlocal/internal/parallel"
)

// roundF16 rounds every value to the nearest float16 (round to nearest even, as ggml).
func roundF16(x []float32) {
	for i, v := range x {
		x[i] = float16.Fromfloat32(v).Float32()
	}
}

// Each layer of the decoder is a forward/backward pair over explicit row-major buffers of n rows
// (llm.c style). Backward functions accumulate (+=) into their input-gradient buffers, so a residual
// stream can collect several contributions without extra copies.

// rmsnormForward: y = x / sqrt(mean(x^2) + eps) * w per row of width d; rstd[i] keeps 1/rms for backward.
// The sum of squares is accumulated in float64, as ggml does.
func rmsnormForward(y, rstd, x, w []float32, n, d int, eps float32) {
	for i := 0; i < n; i++ {
		xr := x[i*d : (i+1)*d]
		var ss float64
		for _, v := range xr {
			ss += float64(v) * float64(v)
		}
		r := float32(1 / math.Sqrt(float64(float32(ss/float64(d))+eps)))
		rstd[i] = r
		yr := y[i*d : (i+1)*d]
		for j, v := range xr {
			yr[j] = v * r * w[j]
		}
	}
}

// rmsnormBackward: dx += r * (g - xh * mean(g * xh)) with g = dy * w and xh = x * r.
func rmsnormBackward(dx, dy, x, w, rstd []float32, n, d int) {
	for i := 0; i < n; i++ {
		xr, dyr, dxr := x[i*d:(i+1)*d], dy[i*d:(i+1)*d], dx[i*d:(i+1)*d]
		r := rstd[i]
		var dot float64
		for j := range xr {
			dot += float64(dyr[j]*w[j]) * float64(xr[j]*r)
		}
		m := float32(dot / float64(d))
		for j := range xr {
			xh := xr[j] * r
			dxr[j] += r * (dyr[j]*w[j] - xh*m)
		}
	}
}

// ropeTable holds cos/sin of every (row, frequency) for the rows' positions.
type ropeTable struct {
	half     int
	cos, sin []float32 // [n][half]
}

// newRopeTable is the CPU engine's table of RopeAngles.
func newRopeTable(c Config, pos []int32, base, scale float32) *ropeTable {
	t := &ropeTable{half: c.NRot / 2}
	t.cos, t.sin = RopeAngles(c, pos, base, scale)
	return t
}

// RopeAngles returns cos and sin [len(pos)][NRot/2] of theta = pos * freq_scale *
// base^(-2i/n_rot) / freq_factor[i], as ggml's rope (the power is built by repeated multiplication
// in float32 like ggml, so angles match to rounding). base and scale are the layer's (gemma3's
// sliding-window layers use their own). The CUDA engine uploads the same table, so both engines
// rotate by the same numbers.
func RopeAngles(c Config, pos []int32, base, scale float32) (cos, sin []float32) {
	half := c.NRot / 2
	cos, sin = make([]float32, len(pos)*half), make([]float32, len(pos)*half)
	thetaScale := float32(math.Pow(float64(base), -2.0/float64(c.NRot)))
	for r, p := range pos {
		theta := float32(p) * scale
		for i := 0; i < half; i++ {
			th := theta
			if c.RopeFreqs != nil {
				th /= c.RopeFreqs[i]
			}
			cos[r*half+i] = float32(math.Cos(float64(th)))
			sin[r*half+i] = float32(math.Sin(float64(th)))
			theta *= thetaScale
		}
	}
	return cos, sin
}

// newMRopeTable is ggml_rope_multi's angle table (ggml_mrope_cache_init, non-interleaved): pair i
// takes its angle from position component t, h, w or e according to which of c.RopeSections the
// sector i % sum(sections) falls in; each component's angle is p_c * base^(-2i/n_rot), built by the
// same repeated float32 multiplication, then divided by the frequency factor and scaled.
func newMRopeTable(c Config, pos [][4]int32) *ropeTable {
	half := c.NRot / 2
	t := &ropeTable{half: half, cos: make([]float32, len(pos)*half), sin: make([]float32, len(pos)*half)}
	thetaScale := float32(math.Pow(float64(c.RopeBase), -2.0/float64(c.NRot)))
	sec := c.RopeSections
	sum := sec[0] + sec[1] + sec[2] + sec[3]
	for r, p := range pos {
		var theta [4]float32
		for k := range theta {
			theta[k] = float32(p[k])
		}
		for i := 0; i < half; i++ {
			comp := 3
			switch sector := i % sum; {
			case sector < sec[0]:
				comp = 0
			case sector < sec[0]+sec[1]:
				comp = 1
			case sector < sec[0]+sec[1]+sec[2]:
				comp = 2
			}
			th := theta[comp]
			if c.RopeFreqs != nil {
				th /= c.RopeFreqs[i]
			}
			th *= c.RopeScale
			t.cos[r*half+i] = float32(math.Cos(float64(th)))
			t.sin[r*half+i] = float32(math.Sin(float64(th)))
			for k := range theta {
				theta[k] *= thetaScale
			}
		}
	}
	return t
}

// ropeApply rotates every head of x ([n][heads*hd]) in place; inverse=true applies the transpose
// rotation, which is the backward of the forward rotation.
func ropeApply(x []float32, t *ropeTable, n, heads, hd int, typ RopeType, inverse bool) {
	half := t.half
	for r := 0; r < n; r++ {
		cs, sn := t.cos[r*half:(r+1)*half], t.sin[r*half:(r+1)*half]
		for h := 0; h < heads; h++ {
			v := x[(r*heads+h)*hd : (r*heads+h+1)*hd]
			for i := 0; i < half; i++ {
				var a, b int
				if typ == RopeNorm {
					a, b = 2*i, 2*i+1
				} else {
					a, b = i, i+half
				}
				c, s := cs[i], sn[i]
				if inverse {
					s = -s
				}
				x0, x1 := v[a], v[b]
				v[a] = x0*c - x1*s
				v[b] = x0*s + x1*c
			}
		}
	}
}

// swigluForward: h = silu(g) * u, split over workers.
func swigluForward(h, g, u []float32, workers int) {
	parallel.For(len(g), workers, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			gv := g[i]
			h[i] = gv / (1 + exp32(-gv)) * u[i]
		}
	})
}

// swigluBackward: dg = dh * u * silu'(g), du = dh * silu(g) (overwrites dg and du).
func swigluBackward(dg, du, dh, g, u []float32, workers int) {
	parallel.For(len(g), workers, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			gv := g[i]
			sig := 1 / (1 + exp32(-gv))
			silu := gv * sig
			dg[i] = dh[i] * u[i] * sig * (1 + gv*(1-sig))
			du[i] = dh[i] * silu
		}
	})
}

// GELU with the tanh approximation, as ggml_gelu: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
const (
	geluCoefA     = 0.044715
	geluSqrt2OvPi = 0.79788456080286535587989211986876
)

func gelu(x float32) float32 {
	return float32(0.5 * float64(x) * (1 + math.Tanh(geluSqrt2OvPi*float64(x)*(1+geluCoefA*float64(x)*float64(x)))))
}

// geluF16Table is ggml's CPU GELU (GGML_GELU_FP16): x rounded to f16, gelu looked up in an f16
// table, identity above 10 and 0 below -10. Used only by the f16-emulation test hook.
func geluF16Table(x float32) float32 {
	switch {
	case x <= -10:
		return 0
	case x >= 10:
		return x
	}
	xh := float16.Fromfloat32(x).Float32()
	return float16.Fromfloat32(gelu(xh)).Float32()
}

// gegluForward: h = gelu(g) * u (gemma3's FFN, llama.cpp's ggml_geglu_split); f16 emulates ggml's
// f16 GELU table (a parity-test hook; training uses the exact function).
func gegluForward(h, g, u []float32, workers int, f16 bool) {
	parallel.For(len(g), workers, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if f16 {
				h[i] = geluF16Table(g[i]) * u[i]
			} else {
				h[i] = gelu(g[i]) * u[i]
			}
		}
	})
}

// gegluBackward: dg = dh * u * gelu'(g), du = dh * gelu(g) (overwrites dg and du), with
// gelu'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3a x^2), t = tanh(sqrt(2/pi) (x + a x^3)).
func gegluBackward(dg, du, dh, g, u []float32, workers int) {
	parallel.For(len(g), workers, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x := float64(g[i])
			t := math.Tanh(geluSqrt2OvPi * x * (1 + geluCoefA*x*x))
			d := 0.5*(1+t) + 0.5*x*(1-t*t)*geluSqrt2OvPi*(1+3*geluCoefA*x*x)
			dg[i] = dh[i] * u[i] * float32(d)
			du[i] = dh[i] * float32(0.5*x*(1+t))
		}
	})
}

// linear is one (possibly adapted) projection: W [out][in], optional bias, optional LoRA pair.
type linear struct {
	w     []float32
	bias  []float32
	p     *Pair // nil: no adapter on this weight
	grad  *Pair // where dA, dB accumulate (nil when only the forward is needed)
	scale float32
	in    int
	out   int
}

// forward: y = x W^T + b + scale * (x A^T) B^T; lu (n x rank) keeps x A^T for the backward.
func (l *linear) forward(y, x, lu []float32, n int) {
	sgemm(false, true, n, l.out, l.in, 1, x, l.in, l.w, l.in, 0, y, l.out)
	if l.bias != nil {
		for i := 0; i < n; i++ {
			row := y[i*l.out : (i+1)*l.out]
			for j, b := range l.bias {
				row[j] += b
			}
		}
	}
	if l.p != nil {
		r := len(l.p.A) / l.in
		sgemm(false, true, n, r, l.in, 1, x, l.in, l.p.A, l.in, 0, lu, r)
		sgemm(false, true, n, l.out, r, l.scale, lu, r, l.p.B, r, 1, y, l.out)
	}
}

// backward: dx += dy W + scale * (dy B) A (skipped when dx is nil), dB += scale * dy^T lu,
// dA += scale * (dy B)^T x. tmp must hold n*rank floats.
func (l *linear) backward(dx, dy, x, lu, tmp []float32, n int, f fault) {
	if dx != nil {
		sgemm(false, false, n, l.in, l.out, 1, dy, l.out, l.w, l.in, 1, dx, l.in)
	}
	if l.p == nil {
		return
	}
	r := len(l.p.A) / l.in
	sgemm(false, false, n, r, l.out, 1, dy, l.out, l.p.B, r, 0, tmp, r)
	if l.grad != nil {
		sB := l.scale
		if f == faultFlipDB {
			sB = -sB
		}
		sgemm(true, false, l.out, r, n, sB, dy, l.out, lu, r, 1, l.grad.B, r)
		sgemm(true, false, r, l.in, n, l.scale, tmp, r, x, l.in, 1, l.grad.A, l.in)
	}
	if dx != nil && f != faultDropLoRADX {
		sgemm(false, false, n, l.in, r, l.scale, tmp, r, l.p.A, l.in, 1, dx, l.in)
	}
}

// fault lets tests corrupt one gradient term and check that the finite-difference test notices.
type fault int

const (
	faultNone        fault = iota
	faultFlipDB            // wrong sign on every dB
	faultDropLoRADX        // the LoRA path's contribution to dx is left out
	faultDropSoftmax       // the -softmax term of d logp / d logits is left out
	faultSkipQKNorm        // q/k gradients bypass the per-head norms' backward (qwen3, gemma3)
	faultGeluAsSilu        // gemma3: the FFN backward uses SiLU's derivative
)
