package optim

import (
	"math"
	"strings"
	"testing"
)

// Gradients (3, 4) and (12): global norm sqrt(9+16+144) = 13.
func clipParams() []Param {
	return []Param{
		{Name: "a", Value: make([]float32, 2), Grad: []float32{3, 4}},
		{Name: "b", Value: make([]float32, 1), Grad: []float32{12}},
	}
}

func TestClipGradNorm(t *testing.T) {
	tests := []struct {
		name    string
		maxNorm float64
		want    []float32 // gradients after clipping, a then b
	}{
		// coef = 1.3/(13+1e-6) = 0.09999999: gradients scale to a tenth.
		{"clip to 1.3", 1.3, []float32{0.3, 0.4, 1.2}},
		{"norm below max", 20, []float32{3, 4, 12}},
		{"disabled", 0, []float32{3, 4, 12}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps := clipParams()
			norm, err := ClipGradNorm(ps, tc.maxNorm)
			if err != nil {
				t.Fatal(err)
			}
			if norm != 13 {
				t.Errorf("pre-clip norm %v, want 13", norm)
			}
			got := append(append([]float32(nil), ps[0].Grad...), ps[1].Grad...)
			for i := range got {
				if !near(float64(got[i]), float64(tc.want[i]), f32Tol) {
					t.Errorf("grad %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
			if tc.maxNorm > 0 && tc.maxNorm < 13 {
				if after := GradNorm(ps); !near(after, tc.maxNorm, f32Tol) {
					t.Errorf("norm after clipping %v, want %v", after, tc.maxNorm)
				}
			}
		})
	}
}

// A non-finite norm is reported and the gradients are left for the trainer to skip the step.
func TestClipGradNormNonFinite(t *testing.T) {
	ps := clipParams()
	ps[1].Grad[0] = float32(math.Inf(1))
	norm, err := ClipGradNorm(ps, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsInf(norm, 1) || ps[0].Grad[0] != 3 {
		t.Errorf("norm %v, grad %v: want +Inf and untouched gradients", norm, ps[0].Grad)
	}
}

func TestClipGradNormBadMax(t *testing.T) {
	for _, m := range []float64{-1, math.NaN(), math.Inf(1)} {
		if _, err := ClipGradNorm(clipParams(), m); err == nil || !strings.Contains(err.Error(), "max norm") {
			t.Errorf("max norm %v: error %v, want a max norm error", m, err)
		}
	}
}
