package optim

import (
	"fmt"
	"math"
)

// GradNorm returns the global L2 norm of all gradients, accumulated in float64.
func GradNorm(params []Param) float64 {
	var sum float64
	for _, p := range params {
		for _, g := range p.Grad {
			sum += float64(g) * float64(g)
		}
	}
	return math.Sqrt(sum)
}

// ClipGradNorm scales every gradient in place by min(1, maxNorm/(norm+1e-6)) where norm is the
// global L2 norm over all parameters (torch.nn.utils.clip_grad_norm_, the 1e-6 included), and
// returns the norm before clipping. maxNorm = 0 disables clipping (the norm is still returned
// for the metrics). A non-finite norm leaves the gradients untouched and is returned as is: the
// trainer must then skip the step (AdamW.Step refuses non-finite gradients anyway).
func ClipGradNorm(params []Param, maxNorm float64) (float64, error) {
	if !(maxNorm >= 0) || math.IsInf(maxNorm, 0) {
		return 0, fmt.Errorf("clip: max norm %v, want a finite value >= 0 (0 disables clipping)", maxNorm)
	}
	norm := GradNorm(params)
	if maxNorm == 0 || math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm, nil
	}
	coef := maxNorm / (norm + 1e-6)
	if coef >= 1 {
		return norm, nil
	}
	for _, p := range params {
		for i := range p.Grad {
			p.Grad[i] = float32(float64(p.Grad[i]) * coef)
		}
	}
	return norm, nil
}
