package cuda

import (
	"math"
	"strings"
	"testing"
)

// TestBackwardInto: the gradient added into a caller's adapter equals the one Backward returns,
// plus what the adapter held; a mismatched adapter or no installed adapter is an error.
func TestBackwardInto(t *testing.T) {
	needGPU(t)
	m := tinyModel(t)
	ad := randomAdapter(t, m.Cfg, 8, 7)
	b, w := groupBatch(m.Cfg, 3, 12, 5, 11)
	e := openEngine(t, m, F32)
	if _, err := e.BackwardInto(b, w, ad.ZeroLike()); err == nil || !strings.Contains(err.Error(), "no adapter installed") {
		t.Errorf("BackwardInto without an installed adapter: %v", err)
	}
	if err := e.SetAdapter(ad); err != nil {
		t.Fatal(err)
	}
	want, err := e.Backward(b, w)
	if err != nil {
		t.Fatal(err)
	}
	into := ad.ZeroLike()
	for _, p := range into.Pairs {
		for i := range p.A {
			p.A[i] = 1
		}
		for i := range p.B {
			p.B[i] = -1
		}
	}
	got, err := e.BackwardInto(b, w, into)
	if err != nil {
		t.Fatal(err)
	}
	if got.Grads != into || got.Loss != want.Loss {
		t.Errorf("result: grads %p (want the adapter passed, %p), loss %v (Backward: %v)", got.Grads, into, got.Loss, want.Loss)
	}
	worst := 0.0
	for i, p := range into.Pairs {
		q := want.Grads.Pairs[i]
		for j := range p.A {
			worst = math.Max(worst, math.Abs(float64(p.A[j]-1-q.A[j])))
		}
		for j := range p.B {
			worst = math.Max(worst, math.Abs(float64(p.B[j]+1-q.B[j])))
		}
	}
	t.Logf("max |into - (start + Backward's gradient)| = %.3g", worst)
	if worst > 1e-5 {
		t.Errorf("BackwardInto added a different gradient: max diff %.3g", worst)
	}
	other := randomAdapter(t, m.Cfg, 4, 1).ZeroLike() // rank 4: shapes differ from the installed rank 8
	if _, err := e.BackwardInto(b, w, other); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("BackwardInto with a rank-4 gradient adapter: %v", err)
	}
}
