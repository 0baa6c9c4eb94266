package optim

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// float32 storage: values near 1 carry about 6e-8 relative error per rounding.
const f32Tol = 1e-6

// Two steps by hand, b1 0.9, b2 0.999, eps 1e-8, wd 0.01, lr 0.1, p0 = 1:
//
//	step 1, g = 0.5:   m = 0.05, v = 0.00025, m_hat = 0.5, v_hat = 0.25
//	                   p = 1 - 0.1*(0.5/0.5 + 0.01*1) = 0.899
//	step 2, g = -0.25: m = 0.045 - 0.025 = 0.02, v = 0.00024975 + 0.0000625 = 0.00031225
//	                   m_hat = 0.02/0.19 = 0.1052632, v_hat = 0.00031225/0.001999 = 0.1562031
//	                   p = 0.899 - 0.1*(0.1052632/0.3952253 + 0.01*0.899) = 0.8714673
func TestAdamWHandSteps(t *testing.T) {
	opt, err := NewAdamW(AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	p := Param{Name: "w", Value: []float32{1}, Grad: []float32{0.5}}
	for i, tc := range []struct{ grad, want float64 }{{0.5, 0.899}, {-0.25, 0.8714673}} {
		p.Grad[0] = float32(tc.grad)
		if err := opt.Step([]Param{p}, 0.1); err != nil {
			t.Fatal(err)
		}
		if !near(float64(p.Value[0]), tc.want, f32Tol) {
			t.Errorf("step %d: value %.9g, want %.9g", i+1, p.Value[0], tc.want)
		}
	}
	if opt.Steps() != 2 {
		t.Errorf("steps = %d, want 2", opt.Steps())
	}
}

// Decoupled weight decay: with a zero gradient the moments stay 0 and the only change is
// p -= lr*wd*p = 2 - 0.1*0.5*2 = 1.9 (Adam with L2 folded into the gradient would instead move
// p by about lr, whatever wd is).
func TestAdamWDecoupledDecay(t *testing.T) {
	tests := []struct {
		name     string
		wd, want float64
	}{
		{"decay", 0.5, 1.9},
		{"no decay", 0, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt, err := NewAdamW(AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: tc.wd})
			if err != nil {
				t.Fatal(err)
			}
			p := Param{Name: "w", Value: []float32{2}, Grad: []float32{0}}
			if err := opt.Step([]Param{p}, 0.1); err != nil {
				t.Fatal(err)
			}
			if !near(float64(p.Value[0]), tc.want, f32Tol) {
				t.Errorf("value %.9g, want %.9g", p.Value[0], tc.want)
			}
		})
	}
}

// The first Adam step moves every coordinate by lr*sign(g) (m_hat/sqrt(v_hat) = g/|g|) whatever
// the gradient's scale: a property test over many magnitudes.
func TestAdamWFirstStepIsSignStep(t *testing.T) {
	opt, err := NewAdamW(AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-12})
	if err != nil {
		t.Fatal(err)
	}
	grads := []float32{1e-4, -3, 250, -0.02}
	p := Param{Name: "w", Value: make([]float32, len(grads)), Grad: grads}
	if err := opt.Step([]Param{p}, 0.01); err != nil {
		t.Fatal(err)
	}
	for i, g := range grads {
		want := -0.01 * math.Copysign(1, float64(g))
		if !near(float64(p.Value[i]), want, 1e-5) {
			t.Errorf("value[%d] = %v, want %v", i, p.Value[i], want)
		}
	}
}

// randomGrads fills the gradients from a seeded generator, so two runs see the same stream.
func randomGrads(rng *rand.Rand, params []Param) {
	for _, p := range params {
		for i := range p.Grad {
			p.Grad[i] = float32(rng.NormFloat64())
		}
	}
}

func newParams() []Param {
	sizes := map[string]int{"blk.0.attn_q.weight.lora_a": 37, "blk.0.attn_q.weight.lora_b": 5}
	var ps []Param
	for _, name := range []string{"blk.0.attn_q.weight.lora_a", "blk.0.attn_q.weight.lora_b"} {
		p := Param{Name: name, Value: make([]float32, sizes[name]), Grad: make([]float32, sizes[name])}
		for i := range p.Value {
			p.Value[i] = float32(i%7) * 0.01
		}
		ps = append(ps, p)
	}
	return ps
}

// Save after step k, load into a fresh optimizer, continue: the parameters and the state must
// be bit-identical to an uninterrupted run (cosine schedule, clipping, weight decay all on).
func TestAdamWResumeBitIdentical(t *testing.T) {
	const total, cut = 20, 7
	sched := Schedule{Kind: ScheduleCosine, PeakLR: 1e-3, TotalSteps: total, WarmupFrac: 0.1}
	cfg := AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	step := func(opt *AdamW, params []Param, rng *rand.Rand, s int) {
		randomGrads(rng, params)
		if _, err := ClipGradNorm(params, 1); err != nil {
			t.Fatal(err)
		}
		lr, err := sched.LR(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := opt.Step(params, lr); err != nil {
			t.Fatal(err)
		}
	}

	straight, _ := NewAdamW(cfg)
	ref := newParams()
	rng := rand.New(rand.NewPCG(1, 2))
	for s := 0; s < total; s++ {
		step(straight, ref, rng, s)
	}

	first, _ := NewAdamW(cfg)
	params := newParams()
	rng = rand.New(rand.NewPCG(1, 2))
	for s := 0; s < cut; s++ {
		step(first, params, rng, s)
	}
	saved, err := first.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	resumed, _ := NewAdamW(DefaultAdamW()) // a different config: the checkpoint's must win
	if err := resumed.UnmarshalBinary(saved); err != nil {
		t.Fatal(err)
	}
	if resumed.Config() != cfg || resumed.Steps() != cut {
		t.Fatalf("restored config %+v step %d, want %+v %d", resumed.Config(), resumed.Steps(), cfg, cut)
	}
	for s := cut; s < total; s++ {
		step(resumed, params, rng, s)
	}

	for i := range ref {
		for j := range ref[i].Value {
			if math.Float32bits(ref[i].Value[j]) != math.Float32bits(params[i].Value[j]) {
				t.Fatalf("%s[%d]: resumed %v, uninterrupted %v", ref[i].Name, j, params[i].Value[j], ref[i].Value[j])
			}
		}
	}
	a, _ := straight.MarshalBinary()
	b, _ := resumed.MarshalBinary()
	if !bytes.Equal(a, b) {
		t.Errorf("optimizer states differ after resume")
	}
}

// The parameter order may change between steps; the state follows the names.
func TestAdamWParamOrderFree(t *testing.T) {
	cfg := DefaultAdamW()
	a, _ := NewAdamW(cfg)
	b, _ := NewAdamW(cfg)
	pa, pb := newParams(), newParams()
	rngA, rngB := rand.New(rand.NewPCG(3, 4)), rand.New(rand.NewPCG(3, 4))
	for s := 0; s < 3; s++ {
		randomGrads(rngA, pa)
		randomGrads(rngB, pb)
		if err := a.Step(pa, 0.01); err != nil {
			t.Fatal(err)
		}
		if err := b.Step([]Param{pb[1], pb[0]}, 0.01); err != nil {
			t.Fatal(err)
		}
	}
	for i := range pa {
		for j := range pa[i].Value {
			if pa[i].Value[j] != pb[i].Value[j] {
				t.Fatalf("%s[%d]: %v vs %v", pa[i].Name, j, pa[i].Value[j], pb[i].Value[j])
			}
		}
	}
}

func TestAdamWErrors(t *testing.T) {
	mk := func(name string, n int) Param {
		return Param{Name: name, Value: make([]float32, n), Grad: make([]float32, n)}
	}
	tests := []struct {
		name   string
		first  []Param // a successful first step fixing the parameter set (nil: none)
		params []Param
		lr     float64
		want   string
	}{
		{"no params", nil, nil, 0.1, "no parameters"},
		{"negative lr", nil, []Param{mk("a", 1)}, -1, "learning rate"},
		{"NaN lr", nil, []Param{mk("a", 1)}, math.NaN(), "learning rate"},
		{"empty name", nil, []Param{mk("", 1)}, 0.1, "empty name"},
		{"duplicate", nil, []Param{mk("a", 1), mk("a", 1)}, 0.1, "passed twice"},
		{"grad length", nil, []Param{{Name: "a", Value: make([]float32, 2), Grad: make([]float32, 1)}}, 0.1, "1 gradients for 2 values"},
		{"NaN grad", nil, []Param{{Name: "a", Value: []float32{0}, Grad: []float32{float32(math.NaN())}}}, 0.1, "gradient[0] = NaN"},
		{"new name", []Param{mk("a", 1)}, []Param{mk("b", 1)}, 0.1, `"b" is not in the optimizer state`},
		{"missing name", []Param{mk("a", 1), mk("b", 1)}, []Param{mk("a", 1)}, 0.1, `"b" of the optimizer state is missing`},
		{"resized", []Param{mk("a", 1)}, []Param{mk("a", 2)}, 0.1, "has 2 values, the optimizer state has 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt, err := NewAdamW(DefaultAdamW())
			if err != nil {
				t.Fatal(err)
			}
			if tc.first != nil {
				if err := opt.Step(tc.first, 0.1); err != nil {
					t.Fatal(err)
				}
			}
			before, _ := opt.MarshalBinary()
			err = opt.Step(tc.params, tc.lr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if after, _ := opt.MarshalBinary(); !bytes.Equal(before, after) {
				t.Errorf("a failed step changed the state")
			}
		})
	}
}

// A NaN in a later tensor must not let earlier tensors be updated.
func TestAdamWFailedStepChangesNoValue(t *testing.T) {
	opt, _ := NewAdamW(DefaultAdamW())
	a := Param{Name: "a", Value: []float32{1}, Grad: []float32{1}}
	b := Param{Name: "b", Value: []float32{1}, Grad: []float32{float32(math.Inf(1))}}
	if err := opt.Step([]Param{a, b}, 0.1); err == nil {
		t.Fatal("want an error for an infinite gradient")
	}
	if a.Value[0] != 1 || opt.Steps() != 0 {
		t.Errorf("value %v steps %d after a refused step, want 1 and 0", a.Value[0], opt.Steps())
	}
}

func TestAdamWConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  AdamWConfig
		want string // "" = valid
	}{
		{"default", DefaultAdamW(), ""},
		{"beta1 = 1", AdamWConfig{Beta1: 1, Beta2: 0.999, Eps: 1e-8}, "beta1"},
		{"beta2 < 0", AdamWConfig{Beta1: 0.9, Beta2: -0.1, Eps: 1e-8}, "beta2"},
		{"eps 0", AdamWConfig{Beta1: 0.9, Beta2: 0.999}, "eps"},
		{"wd NaN", AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: math.NaN()}, "weight decay"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewAdamW(tc.cfg)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// A zero AdamW (not made by NewAdamW) refuses to step instead of dividing by eps = 0.
func TestAdamWZeroValue(t *testing.T) {
	var opt AdamW
	err := opt.Step([]Param{{Name: "a", Value: []float32{1}, Grad: []float32{1}}}, 0.1)
	if err == nil || !strings.Contains(err.Error(), "NewAdamW") {
		t.Errorf("error %v, want a hint to use NewAdamW", err)
	}
}
