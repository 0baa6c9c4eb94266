package lora

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// Pair is one adapted weight: W' = W + (alpha/rank) * B * A, in llama.cpp's (and PEFT's) layout.
type Pair struct {
	Name   string // base tensor name, e.g. "blk.3.attn_q.weight"
	Layer  int
	Target string // one of Targets
	In     int
	Out    int
	A      []float32 // [rank][in]  (GGUF lora_a ne=[in, rank])
	B      []float32 // [out][rank] (GGUF lora_b ne=[rank, out])
}

// Adapter is a LoRA adapter for a base model's language decoder. Gradients use the same type: a
// gradient Adapter's A and B hold d(loss)/dA and d(loss)/dB.
type Adapter struct {
	Arch    string
	Rank    int
	Alpha   float32
	Targets []string
	Pairs   []*Pair // ordered by layer, then by the order of Targets
	index   map[[2]int]*Pair
}

// AdapterOptions configures NewAdapter.
type AdapterOptions struct {
	Rank    int
	Alpha   float32  // 0 means alpha = rank (scale 1)
	Targets []string // nil means DefaultTargets()
	Seed    uint64
}

// NewAdapter makes an adapter for a model: A Kaiming-uniform (as PEFT: bound 1/sqrt(in), seeded), B zero,
// so the adapted model starts exactly at the base model.
func NewAdapter(cfg Config, o AdapterOptions) (*Adapter, error) {
	if o.Rank <= 0 {
		return nil, fmt.Errorf("new adapter: rank %d must be positive", o.Rank)
	}
	if o.Alpha == 0 {
		o.Alpha = float32(o.Rank)
	}
	targets := o.Targets
	if targets == nil {
		targets = DefaultTargets()
	}
	a, err := emptyAdapter(cfg, o.Rank, o.Alpha, targets)
	if err != nil {
		return nil, fmt.Errorf("new adapter: %w", err)
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x10ba))
	for _, p := range a.Pairs {
		bound := 1 / math.Sqrt(float64(p.In))
		for i := range p.A {
			p.A[i] = float32((2*r.Float64() - 1) * bound)
		}
	}
	return a, nil
}

// emptyAdapter allocates zero A and B for every (layer, target).
func emptyAdapter(cfg Config, rank int, alpha float32, targets []string) (*Adapter, error) {
	if rank <= 0 {
		return nil, fmt.Errorf("rank %d must be positive", rank)
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("no target modules")
	}
	var seen []string
	for _, t := range targets {
		if _, _, ok := cfg.LinearShape(t); !ok {
			return nil, fmt.Errorf("target module %q does not exist in a %s model (available: %s)", t, cfg.Arch, strings.Join(Targets, ", "))
		}
		if slices.Contains(seen, t) {
			return nil, fmt.Errorf("target module %q listed twice", t)
		}
		seen = append(seen, t)
	}
	// Keep the canonical order whatever order the caller used.
	var ordered []string
	for _, t := range Targets {
		if slices.Contains(seen, t) {
			ordered = append(ordered, t)
		}
	}
	a := &Adapter{Arch: cfg.Arch, Rank: rank, Alpha: alpha, Targets: ordered}
	for il := 0; il < cfg.NLayer; il++ {
		for _, t := range ordered {
			in, out, _ := cfg.LinearShape(t)
			a.Pairs = append(a.Pairs, &Pair{
				Name: fmt.Sprintf("blk.%d.%s.weight", il, t), Layer: il, Target: t, In: in, Out: out,
				A: make([]float32, rank*in), B: make([]float32, out*rank),
			})
		}
	}
	a.reindex()
	return a, nil
}

func (a *Adapter) reindex() {
	a.index = map[[2]int]*Pair{}
	for _, p := range a.Pairs {
		a.index[[2]int{p.Layer, slices.Index(Targets, p.Target)}] = p
	}
}

// Scale is alpha/rank, the factor llama.cpp applies at user scale 1; llama.cpp applies 1 when
// alpha is 0 (it does not divide by the rank then), and so does the engine.
func (a *Adapter) Scale() float32 {
	if a.Alpha == 0 {
		return 1
	}
	return a.Alpha / float32(a.Rank)
}

// Lookup returns the pair adapting target in layer il, or nil.
func (a *Adapter) Lookup(il int, target string) *Pair {
	if a == nil {
		return nil
	}
	if a.index == nil {
		a.reindex()
	}
	return a.index[[2]int{il, slices.Index(Targets, target)}]
}

// Params returns every trainable matrix (A then B of each pair, in pair order): the flat view an
// optimizer walks. A gradient Adapter returns its matrices in the same order.
func (a *Adapter) Params() [][]float32 {
	out := make([][]float32, 0, 2*len(a.Pairs))
	for _, p := range a.Pairs {
		out = append(out, p.A, p.B)
	}
	return out
}

// NumParams counts the adapter's trainable values.
func (a *Adapter) NumParams() int {
	n := 0
	for _, p := range a.Pairs {
		n += len(p.A) + len(p.B)
	}
	return n
}

// ZeroLike returns an adapter of the same shapes with all values zero (e.g. for gradients).
func (a *Adapter) ZeroLike() *Adapter {
	z := &Adapter{Arch: a.Arch, Rank: a.Rank, Alpha: a.Alpha, Targets: slices.Clone(a.Targets)}
	for _, p := range a.Pairs {
		q := *p
		q.A, q.B = make([]float32, len(p.A)), make([]float32, len(p.B))
		z.Pairs = append(z.Pairs, &q)
	}
	z.reindex()
	return z
}

// Clone deep-copies the adapter.
func (a *Adapter) Clone() *Adapter {
	z := a.ZeroLike()
	for i, p := range a.Pairs {
		copy(z.Pairs[i].A, p.A)
		copy(z.Pairs[i].B, p.B)
	}
	return z
}

// CheckModel verifies that the adapter fits the model: architecture, layer indices and shapes.
func (a *Adapter) CheckModel(cfg Config) error {
	if a.Rank <= 0 {
		return fmt.Errorf("adapter rank %d must be positive", a.Rank)
	}
	if a.Arch != cfg.Arch {
		return fmt.Errorf("adapter is for architecture %q, model is %q", a.Arch, cfg.Arch)
	}
	for _, p := range a.Pairs {
		in, out, ok := cfg.LinearShape(p.Target)
		if !ok {
			return fmt.Errorf("adapter tensor %s: target module %q does not exist in the model", p.Name, p.Target)
		}
		if p.Layer < 0 || p.Layer >= cfg.NLayer {
			return fmt.Errorf("adapter tensor %s: layer %d, model has %d layers", p.Name, p.Layer, cfg.NLayer)
		}
		if p.In != in || p.Out != out {
			return fmt.Errorf("adapter tensor %s: shape in=%d out=%d, model weight is in=%d out=%d (adapter for another model?)", p.Name, p.In, p.Out, in, out)
		}
		if len(p.A) != a.Rank*p.In || len(p.B) != p.Out*a.Rank {
			return fmt.Errorf("adapter tensor %s: A has %d values and B %d, want %d and %d for rank %d", p.Name, len(p.A), len(p.B), a.Rank*p.In, p.Out*a.Rank, a.Rank)
		}
	}
	return nil
}

// Add accumulates b into a (a += b), e.g. the gradients of several Backward calls of one step.
func (a *Adapter) Add(b *Adapter) error {
	if len(a.Pairs) != len(b.Pairs) || a.Rank != b.Rank {
		return fmt.Errorf("add adapters: %d pairs of rank %d vs %d of rank %d", len(a.Pairs), a.Rank, len(b.Pairs), b.Rank)
	}
	for i, p := range a.Pairs {
		q := b.Pairs[i]
		if p.Name != q.Name || len(p.A) != len(q.A) || len(p.B) != len(q.B) {
			return fmt.Errorf("add adapters: pair %d is %s, other has %s", i, p.Name, q.Name)
		}
		for j, v := range q.A {
			p.A[j] += v
		}
		for j, v := range q.B {
			p.B[j] += v
		}
	}
	return nil
}
