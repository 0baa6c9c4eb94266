package optim

import (
	"fmt"
	"math"
)

// Param is one named trainable tensor, flattened. Value is updated in place by AdamW.Step; Grad
// is read (and scaled in place by ClipGradNorm). The name is the key of the optimizer state, so
// it must be stable across steps and across a checkpoint (for LoRA: the GGUF tensor name, e.g.
// "blk.0.attn_q.weight.lora_a").
type Param struct {
	Name  string
	Value []float32
	Grad  []float32
}

// AdamWConfig holds the hyper-parameters that stay fixed for a run. The learning rate is not
// here: it comes from a Schedule at every step.
type AdamWConfig struct {
	Beta1       float64 // first-moment decay, usually 0.9
	Beta2       float64 // second-moment decay, usually 0.999
	Eps         float64 // added to sqrt(v_hat), usually 1e-8
	WeightDecay float64 // decoupled: param -= lr * wd * param (0.01 in HF/TRL, 0 common for LoRA)
}

// DefaultAdamW returns the PyTorch/HF defaults with weight decay 0.01 (the HF Trainer's AdamW
// default used by TRL/EasyR1 recipes).
func DefaultAdamW() AdamWConfig {
	return AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
}

// Validate reports the first out-of-range hyper-parameter.
func (c AdamWConfig) Validate() error {
	switch {
	case !(c.Beta1 >= 0 && c.Beta1 < 1):
		return fmt.Errorf("adamw: beta1 = %v, want 0 <= beta1 < 1", c.Beta1)
	case !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("adamw: beta2 = %v, want 0 <= beta2 < 1", c.Beta2)
	case !(c.Eps > 0) || math.IsInf(c.Eps, 0):
		return fmt.Errorf("adamw: eps = %v, want a finite value > 0", c.Eps)
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return fmt.Errorf("adamw: weight decay = %v, want a finite value >= 0", c.WeightDecay)
	}
	return nil
}

// AdamW is the optimizer state: the step count and the two moment buffers of every parameter,
// keyed by name. The parameter set is fixed by the first Step (or by UnmarshalBinary); later
// steps must pass the same names with the same lengths, in any order.
type AdamW struct {
	cfg   AdamWConfig
	step  int64
	order []string // names in first-seen order: the serialisation order
	state map[string]*moments
}

type moments struct {
	m, v []float32
}

// NewAdamW returns an optimizer with no state yet.
func NewAdamW(cfg AdamWConfig) (*AdamW, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &AdamW{cfg: cfg, state: map[string]*moments{}}, nil
}

// Config returns the hyper-parameters (restored ones after UnmarshalBinary), so a resuming
// trainer can compare them with its own configuration.
func (o *AdamW) Config() AdamWConfig { return o.cfg }

// Steps returns how many updates have been applied.
func (o *AdamW) Steps() int64 { return o.step }

// Step applies one AdamW update with learning rate lr to every parameter:
//
//	m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
//	p -= lr * ( (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps) + wd*p )
//
// which is PyTorch's torch.optim.AdamW (decoupled decay, applied to the pre-update value) up to
// rounding. Arithmetic is float64 per element; state and values are stored as float32.
//
// Nothing is changed when an error is returned: a non-finite gradient or learning rate, or a
// parameter set that differs from the one of the first step, is reported before any update.
func (o *AdamW) Step(params []Param, lr float64) error {
	if err := o.cfg.Validate(); err != nil { // a zero AdamW{} not made by NewAdamW
		return fmt.Errorf("%w (make the optimizer with NewAdamW)", err)
	}
	if o.state == nil {
		o.state = map[string]*moments{}
	}
	if !(lr >= 0) || math.IsInf(lr, 0) {
		return fmt.Errorf("adamw step %d: learning rate %v, want a finite value >= 0", o.step+1, lr)
	}
	if err := o.checkParams(params); err != nil {
		return fmt.Errorf("adamw step %d: %w", o.step+1, err)
	}
	if len(o.order) == 0 {
		for _, p := range params {
			o.order = append(o.order, p.Name)
			o.state[p.Name] = &moments{m: make([]float32, len(p.Value)), v: make([]float32, len(p.Value))}
		}
	}
	o.step++
	b1, b2 := o.cfg.Beta1, o.cfg.Beta2
	bc1 := 1 - math.Pow(b1, float64(o.step))
	bc2 := 1 - math.Pow(b2, float64(o.step))
	for _, p := range params {
		st := o.state[p.Name]
		adamwUpdate(p.Value, p.Grad, st.m, st.v, lr, b1, b2, bc1, bc2, o.cfg.Eps, o.cfg.WeightDecay)
	}
	return nil
}

// adamwUpdate is the per-tensor kernel; bc1 and bc2 are the bias corrections 1-b^t.
func adamwUpdate(value, grad, m, v []float32, lr, b1, b2, bc1, bc2, eps, wd float64) {
	for i := range value {
		g := float64(grad[i])
		mi := b1*float64(m[i]) + (1-b1)*g
		vi := b2*float64(v[i]) + (1-b2)*g*g
		m[i], v[i] = float32(mi), float32(vi)
		p := float64(value[i])
		value[i] = float32(p - lr*((mi/bc1)/(math.Sqrt(vi/bc2)+eps)+wd*p))
	}
}

// checkParams validates names, lengths and gradient values against the existing state.
func (o *AdamW) checkParams(params []Param) error {
	if len(params) == 0 {
		return fmt.Errorf("no parameters")
	}
	seen := make(map[string]bool, len(params))
	for _, p := range params {
		if p.Name == "" {
			return fmt.Errorf("parameter with an empty name")
		}
		if seen[p.Name] {
			return fmt.Errorf("parameter %q passed twice", p.Name)
		}
		seen[p.Name] = true
		if len(p.Grad) != len(p.Value) {
			return fmt.Errorf("parameter %q: %d gradients for %d values", p.Name, len(p.Grad), len(p.Value))
		}
		if len(o.order) > 0 {
			st, ok := o.state[p.Name]
			if !ok {
				return fmt.Errorf("parameter %q is not in the optimizer state", p.Name)
			}
			if len(st.m) != len(p.Value) {
				return fmt.Errorf("parameter %q has %d values, the optimizer state has %d", p.Name, len(p.Value), len(st.m))
			}
		}
		for i, g := range p.Grad {
			if math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) {
				return fmt.Errorf("parameter %q: gradient[%d] = %v", p.Name, i, g)
			}
		}
	}
	if len(o.order) > 0 && len(params) != len(o.order) {
		for _, name := range o.order {
			if !seen[name] {
				return fmt.Errorf("parameter %q of the optimizer state is missing", name)
			}
		}
	}
	return nil
}
