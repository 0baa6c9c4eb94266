package lora

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestExp32 bounds exp32's relative error against math.Exp over the float32 range the engine uses.
func TestExp32(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	worst := 0.0
	check := func(x float32) {
		want := math.Exp(float64(x))
		got := float64(exp32(x))
		if want < 1e-37 { // subnormal results are flushed; the softmax never needs them
			if got > 1e-37 {
				t.Fatalf("exp32(%g) = %g, want ~0", x, got)
			}
			return
		}
		rel := math.Abs(got-want) / want
		worst = math.Max(worst, rel)
		if rel > 2.5e-7 {
			t.Fatalf("exp32(%g) = %g, math.Exp %g, relative error %g", x, got, want, rel)
		}
	}
	for range 200000 {
		check(float32(r.Float64()*175 - 87))
	}
	for _, x := range []float32{0, -0.5, 0.5, 1, -1, 88.7, -87.3, 1e-8, -1e-8, -20, 20} {
		check(x)
	}
	if exp32(-1000) != 0 || !math.IsInf(float64(exp32(1000)), 1) {
		t.Fatal("exp32 limits")
	}
	t.Logf("worst relative error %.3g", worst)
}
