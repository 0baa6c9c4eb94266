package lora

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vzlocal/vzlocal/internal/ggmlquant"

	"github.com/ollama/ollama/fs/ggml"
	"github.com/rs/zerolog/log"
)

// Layer holds one decoder block's base weights as float32, row-major [out][in] (ggml ne=[in,out]).
type Layer struct {
	AttnNorm, FFNNorm []float32
	Wq, Wk, Wv, Wo    []float32
	Bq, Bk, Bv        []float32 // nil when the model has no q/k/v biases
	Wgate, Wup, Wdown []float32
	// Per-head q/k norms [head_dim] (Config.QKNorm: qwen3, gemma3), gemma3's post-attention and
	// post-FFN norms [n_embd]; nil otherwise. GGUF stores the multipliers themselves (the gemma3
	// converter adds Gemma's +1).
	AttnQNorm, AttnKNorm, PostAttnNorm, PostFFNNorm []float32
}

// Model is a dequantized base model: every weight float32, ready for BLAS.
type Model struct {
	Cfg     Config
	TokEmbd []float32 // [vocab][embd]
	OutNorm []float32
	Output  []float32 // [vocab][embd]; the same slice as TokEmbd when tied
	Layers  []Layer
}

// Targets are the LoRA-adaptable linear layers of a decoder block, by their GGUF names.
var Targets = []string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}

// DefaultTargets is every linear layer of the language model.
func DefaultTargets() []string { return append([]string(nil), Targets...) }

// LinearShape returns (in, out) of a target's weight (ok false for an unknown target).
func (c Config) LinearShape(target string) (in, out int, ok bool) {
	q, kv := c.NHead*c.HeadDim, c.NHeadKV*c.HeadDim
	switch target {
	case "attn_q":
		return c.NEmbd, q, true
	case "attn_k", "attn_v":
		return c.NEmbd, kv, true
	case "attn_output":
		return q, c.NEmbd, true
	case "ffn_gate", "ffn_up":
		return c.NEmbd, c.NFF, true
	case "ffn_down":
		return c.NFF, c.NEmbd, true
	}
	return 0, 0, false
}

// weight returns the base weight of a target in layer il.
func (m *Model) weight(il int, target string) []float32 {
	if w := m.Layers[il].weightRef(target); w != nil {
		return *w
	}
	return nil
}

// weightRef returns the field holding a target's base weight, or nil for an unknown target.
func (l *Layer) weightRef(target string) *[]float32 {
	switch target {
	case "attn_q":
		return &l.Wq
	case "attn_k":
		return &l.Wk
	case "attn_v":
		return &l.Wv
	case "attn_output":
		return &l.Wo
	case "ffn_gate":
		return &l.Wgate
	case "ffn_up":
		return &l.Wup
	case "ffn_down":
		return &l.Wdown
	}
	return nil
}

// NumParams counts the base model's parameters (tied output counted once).
func (m *Model) NumParams() int64 {
	n := int64(len(m.TokEmbd) + len(m.OutNorm))
	if !m.Cfg.TiedOutput {
		n += int64(len(m.Output))
	}
	for _, l := range m.Layers {
		for _, w := range [][]float32{l.AttnNorm, l.FFNNorm, l.Wq, l.Wk, l.Wv, l.Wo, l.Bq, l.Bk, l.Bv, l.Wgate, l.Wup, l.Wdown,
			l.AttnQNorm, l.AttnKNorm, l.PostAttnNorm, l.PostFFNNorm} {
			n += int64(len(w))
		}
	}
	return n
}

// ReadConfig reads a base model's hyper-parameters from its GGUF header only (no tensor data), e.g.
// to check an adapter file against a model without loading the model.
func ReadConfig(path string) (Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return Config{}, fmt.Errorf("read model config: %w", err)
	}
	defer f.Close()
	g, err := ggml.Decode(f, 16) // small arrays (rope.dimension_sections) only
	if err != nil {
		return Config{}, fmt.Errorf("read model config %s: %w", path, err)
	}
	cfg, err := ConfigFromGGUF(g)
	if err != nil {
		return Config{}, fmt.Errorf("read model config %s: %w", path, err)
	}
	return cfg, nil
}

// ConfigFromGGUF reads the hyper-parameters from a decoded header and what the tensor list says:
// the vocabulary size, a tied output head, q/k/v biases. The header must have been decoded with
// room for small arrays (rope.dimension_sections: ggml.Decode's maxArraySize of 16 or more).
func ConfigFromGGUF(g *ggml.GGML) (Config, error) {
	cfg, err := configFromKV(g.KV())
	if err != nil {
		return Config{}, err
	}
	hasOutput := false
	for _, t := range g.Tensors().Items() {
		switch t.Name {
		case "token_embd.weight":
			if len(t.Shape) == 2 {
				cfg.NVocab = int(t.Shape[1])
			}
		case "output.weight":
			hasOutput = true
		case "blk.0.attn_q.bias":
			cfg.HasQKVBias = true
		}
	}
	if cfg.NVocab == 0 {
		return Config{}, fmt.Errorf("missing or malformed tensor token_embd.weight")
	}
	cfg.TiedOutput = !hasOutput
	return cfg, nil
}

// LoadModel reads a GGUF of a supported architecture (SupportedArchitectures) and dequantizes every
// tensor the decoder uses with ggml's own to_float. The file is mmap'd; only the float32 copies stay
// in memory.
func LoadModel(path string) (*Model, error) {
	t0 := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	defer f.Close()
	g, err := ggml.Decode(f, 16) // small arrays (rope.dimension_sections) only
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	kv := g.KV()
	if t, _ := kv["general.type"].(string); t == "adapter" {
		return nil, fmt.Errorf("load model %s: file is an adapter, not a base model", path)
	}
	cfg, err := ConfigFromGGUF(g)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", path, err)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("load model %s: mmap: %w", path, err)
	}
	defer syscall.Munmap(data)

	byName := map[string]*ggml.Tensor{}
	for _, t := range g.Tensors().Items() {
		byName[t.Name] = t
	}
	base := g.Tensors().Offset
	ld := &tensorLoader{path: path, data: data, base: base, byName: byName}

	m := &Model{Cfg: cfg}
	E, V := cfg.NEmbd, cfg.NVocab
	ld.want(&m.TokEmbd, "token_embd.weight", E, V)
	ld.want(&m.OutNorm, "output_norm.weight", E)
	if !cfg.TiedOutput {
		ld.want(&m.Output, "output.weight", E, V)
	}
	if t := byName["rope_freqs.weight"]; t != nil {
		ld.want(&m.Cfg.RopeFreqs, "rope_freqs.weight", cfg.NRot/2)
	}
	hasBias := cfg.HasQKVBias
	m.Layers = make([]Layer, cfg.NLayer)
	for il := range m.Layers {
		l := &m.Layers[il]
		p := fmt.Sprintf("blk.%d.", il)
		ld.want(&l.AttnNorm, p+"attn_norm.weight", E)
		ld.want(&l.FFNNorm, p+"ffn_norm.weight", E)
		for _, tg := range Targets {
			in, out, _ := cfg.LinearShape(tg)
			ld.want(l.weightRef(tg), p+tg+".weight", in, out)
		}
		if cfg.QKNorm {
			ld.want(&l.AttnQNorm, p+"attn_q_norm.weight", cfg.HeadDim)
			ld.want(&l.AttnKNorm, p+"attn_k_norm.weight", cfg.HeadDim)
		}
		if cfg.Gemma != nil {
			ld.want(&l.PostAttnNorm, p+"post_attention_norm.weight", E)
			ld.want(&l.PostFFNNorm, p+"post_ffw_norm.weight", E)
		}
		if hasBias {
			ld.want(&l.Bq, p+"attn_q.bias", cfg.NHead*cfg.HeadDim)
			ld.want(&l.Bk, p+"attn_k.bias", cfg.NHeadKV*cfg.HeadDim)
			ld.want(&l.Bv, p+"attn_v.bias", cfg.NHeadKV*cfg.HeadDim)
		}
	}
	if err := ld.checkUnused(); err != nil {
		return nil, err
	}
	if err := ld.run(); err != nil {
		return nil, err
	}
	if m.Cfg.TiedOutput {
		m.Output = m.TokEmbd
	}
	log.Debug().Str("path", path).Str("arch", cfg.Arch).Int("layers", cfg.NLayer).Int("embd", cfg.NEmbd).
		Int("vocab", cfg.NVocab).Int64("params", m.NumParams()).Dur("took", time.Since(t0)).
		Msg("lora: base model dequantized")
	return m, nil
}

// tensorLoader collects (tensor, destination) requests, checks shapes, then dequantizes in parallel.
type tensorLoader struct {
	path   string
	data   []byte
	base   uint64
	byName map[string]*ggml.Tensor
	jobs   []loadJob
	err    error
}

type loadJob struct {
	t   *ggml.Tensor
	dst *[]float32
}

func (ld *tensorLoader) want(dst *[]float32, name string, shape ...int) {
	if ld.err != nil {
		return
	}
	t := ld.byName[name]
	if t == nil {
		ld.err = fmt.Errorf("load model %s: missing tensor %s", ld.path, name)
		return
	}
	ok := len(t.Shape) >= len(shape)
	for i := 0; ok && i < len(t.Shape); i++ {
		want := 1
		if i < len(shape) {
			want = shape[i]
		}
		ok = int(t.Shape[i]) == want
	}
	if !ok {
		ld.err = fmt.Errorf("load model %s: tensor %s has shape %v, want %v", ld.path, name, t.Shape, shape)
		return
	}
	if !ggmlquant.Supported(t.Kind) {
		ld.err = fmt.Errorf("load model %s: tensor %s has unsupported type %s", ld.path, name, typeName(t.Kind))
		return
	}
	ld.jobs = append(ld.jobs, loadJob{t, dst})
}

// checkUnused refuses a decoder bias the engine has no place for (llama.cpp's llama arch adds
// optional attn_output and FFN biases): ignoring it would silently compute another model.
func (ld *tensorLoader) checkUnused() error {
	if ld.err != nil {
		return ld.err
	}
	used := make(map[string]bool, len(ld.jobs))
	for _, j := range ld.jobs {
		used[j.t.Name] = true
	}
	var names []string
	for name := range ld.byName {
		if strings.HasPrefix(name, "blk.") && strings.HasSuffix(name, ".bias") && !used[name] {
			names = append(names, name)
		}
	}
	if len(names) > 0 {
		slices.Sort(names)
		return fmt.Errorf("load model %s: tensor %s is not supported by the gradient engine (it would be ignored)", ld.path, names[0])
	}
	return nil
}

func (ld *tensorLoader) run() error {
	if ld.err != nil {
		return ld.err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ld.jobs))
	sem := make(chan struct{}, runtime.NumCPU())
	for i, j := range ld.jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			n := int(j.t.Elements())
			off := ld.base + j.t.Offset
			size := j.t.Size()
			if off+size > uint64(len(ld.data)) {
				errs[i] = fmt.Errorf("load model %s: tensor %s data [%d, %d) beyond end of file (%d bytes)", ld.path, j.t.Name, off, off+size, len(ld.data))
				return
			}
			out := make([]float32, n)
			if err := dequantize(j.t.Kind, ld.data[off:off+size], out); err != nil {
				errs[i] = fmt.Errorf("load model %s: tensor %s: %w", ld.path, j.t.Name, err)
				return
			}
			*j.dst = out
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// RandomModel builds a model with random weights (N(0, 0.02) matrices, norms near 1) for tests and
// benchmarks; no file is involved.
func RandomModel(cfg Config, seed uint64) *Model {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	mat := func(n int, std float64) []float32 {
		w := make([]float32, n)
		for i := range w {
			w[i] = float32(r.NormFloat64() * std)
		}
		return w
	}
	norm := func(n int) []float32 {
		w := make([]float32, n)
		for i := range w {
			w[i] = float32(1 + 0.1*r.NormFloat64())
		}
		return w
	}
	E, F, V := cfg.NEmbd, cfg.NFF, cfg.NVocab
	q, kv := cfg.NHead*cfg.HeadDim, cfg.NHeadKV*cfg.HeadDim
	std := 1 / math.Sqrt(float64(E))
	m := &Model{Cfg: cfg, TokEmbd: mat(V*E, 1), OutNorm: norm(E)}
	if cfg.TiedOutput {
		m.Output = m.TokEmbd
	} else {
		m.Output = mat(V*E, std)
	}
	m.Layers = make([]Layer, cfg.NLayer)
	for il := range m.Layers {
		l := &m.Layers[il]
		l.AttnNorm, l.FFNNorm = norm(E), norm(E)
		l.Wq, l.Wk, l.Wv, l.Wo = mat(q*E, std), mat(kv*E, std), mat(kv*E, std), mat(E*q, 1/math.Sqrt(float64(q)))
		l.Wgate, l.Wup, l.Wdown = mat(F*E, std), mat(F*E, std), mat(E*F, 1/math.Sqrt(float64(F)))
		if cfg.HasQKVBias {
			l.Bq, l.Bk, l.Bv = mat(q, 0.1), mat(kv, 0.1), mat(kv, 0.1)
		}
		if cfg.QKNorm {
			l.AttnQNorm, l.AttnKNorm = norm(cfg.HeadDim), norm(cfg.HeadDim)
		}
		if cfg.Gemma != nil {
			l.PostAttnNorm, l.PostFFNNorm = norm(E), norm(E)
		}
	}
	return m
}
