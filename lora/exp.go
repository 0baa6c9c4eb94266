package lora

import "math"

// exp32 is a float32 exp (Cephes expf: range reduction by ln 2 and a degree-6 polynomial), about
// 3x faster than math.Exp through float64 and within 2 ulp of it (TestExp32). The attention softmax,
// the vocabulary log-softmax and SwiGLU spend most of their non-BLAS time here.
func exp32(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	if x > 88.72283 {
		return float32(math.Inf(1))
	}
	if x < -87.33654 {
		return 0
	}
	if x != x {
		return x
	}
	// n = round(x / ln 2)
	z := x*log2e + 0.5
	n := int32(z)
	if z < 0 && float32(n) != z {
		n-- // floor for negative values
	}
	fn := float32(n)
	r := x - fn*c1 - fn*c2
	r2 := r * r
	p := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	y := p*r2 + r + 1
	// Scale by 2^n in two steps so that n = -127 or 128 (near the ends of the range) stays exact.
	n1 := n / 2
	return y * math.Float32frombits(uint32(n1+127)<<23) * math.Float32frombits(uint32(n-n1+127)<<23)
}
