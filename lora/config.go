package lora

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/ollama/ollama/fs/ggml"
)

// RopeType says which dimensions RoPE rotates together, as llama.cpp does per architecture.
type RopeType int

const (
	// RopeNorm rotates adjacent pairs (2i, 2i+1): llama.cpp's llama arch (its converter permutes
	// the q/k rows of the HF checkpoint so that this equals HF's rotate_half).
	RopeNorm RopeType = iota
	// RopeNeox rotates halves (i, i+d/2): qwen2 and most newer archs.
	RopeNeox
)

// archRope lists the supported text architectures and their rope type. qwen2vl rotates NEOX
// halves like qwen2, with M-RoPE angles (Config.RopeSections); qwen3 is qwen2 without biases and
// with q/k norms; gemma3 is NEOX with q/k norms and the extras of Config.Gemma.
var archRope = map[string]RopeType{
	"llama":   RopeNorm,
	"qwen2":   RopeNeox,
	"qwen2vl": RopeNeox,
	"qwen3":   RopeNeox,
	"gemma3":  RopeNeox,
}

// SupportedArchitectures lists the GGUF architectures the engine can run.
func SupportedArchitectures() []string {
	var out []string
	for a := range archRope {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Config holds every hyper-parameter of the decoder, read from the GGUF.
type Config struct {
	Arch       string
	NLayer     int
	NEmbd      int
	NHead      int
	NHeadKV    int
	HeadDim    int
	NFF        int
	NVocab     int
	NCtx       int
	NRot       int // rotated dimensions per head (rope.dimension_count, default HeadDim)
	RMSEps     float32
	RopeBase   float32
	RopeScale  float32 // ggml freq_scale: 1/factor for linear scaling, 1 when none
	Rope       RopeType
	TiedOutput bool      // output head is token_embd (no output.weight)
	RopeFreqs  []float32 // llama3-style per-dimension frequency divisors (rope_freqs.weight), or nil
	HasQKVBias bool

	// RopeSections (qwen2vl's M-RoPE, rope.dimension_sections): how many of the NRot/2 rotary pairs
	// take their angle from each position component t, h, w, e, in that order, repeating every
	// sum(sections) pairs as ggml_rope_multi does. All zero for 1-D RoPE.
	RopeSections [4]int

	// QKNorm: every q and k head is RMS-normed with attn_q_norm / attn_k_norm ([head_dim]) before
	// RoPE (qwen3, gemma3).
	QKNorm bool

	// Gemma holds gemma3's extras; nil for the other architectures.
	Gemma *GemmaConfig
}

// GemmaConfig is what gemma3 adds to the llama-style block (llama.cpp models/gemma3.cpp):
// token embeddings scaled by sqrt(n_embd) (image rows are not), RMS norms (Config.QKNorm) on every
// q and k head before RoPE, RMS norms after the attention and after the FFN (before each residual add), a
// GELU(tanh)-gated FFN, queries scaled by QueryScale, and sliding-window layers.
type GemmaConfig struct {
	EmbedScale float32 // sqrtf(n_embd), applied to token rows only
	QueryScale float32 // 1/sqrt(key_length), or 1/sqrt(n_embd/n_head) for the 62-layer 27B
	// SlidingWindow > 0: layer il is a sliding-window layer unless (il+1)%6 == 0 (llama.cpp's
	// set_swa_pattern(6)); in those layers a query at position p sees keys at positions > p - window,
	// and RoPE uses base SWARopeBase and scale 1 instead of the model's.
	SlidingWindow int
	SWARopeBase   float32
}

// MRoPE reports whether the model rotates with M-RoPE (several position components per token).
func (c Config) MRoPE() bool { return c.RopeSections != [4]int{} }

// IsSWA reports whether layer il is a sliding-window layer.
func (c Config) IsSWA(il int) bool {
	return c.Gemma != nil && c.Gemma.SlidingWindow > 0 && (il+1)%6 != 0
}

// kvNumber reads an integer or float KV value of any GGUF numeric type.
func kvNumber(kv ggml.KV, key string) (float64, bool) {
	switch v := kv[key].(type) {
	case uint8:
		return float64(v), true
	case int8:
		return float64(v), true
	case uint16:
		return float64(v), true
	case int16:
		return float64(v), true
	case uint32:
		return float64(v), true
	case int32:
		return float64(v), true
	case uint64:
		return float64(v), true
	case int64:
		return float64(v), true
	case float32:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// configFromKV reads the hyper-parameters. Keys are looked up with their full "<arch>." prefix on the
// raw map, because ggml.KV's typed getters re-prefix keys and reject other integer widths.
func configFromKV(kv ggml.KV) (Config, error) {
	arch, _ := kv["general.architecture"].(string)
	rt, ok := archRope[arch]
	if !ok {
		return Config{}, fmt.Errorf("unsupported architecture %q (supported: %s)", arch, strings.Join(SupportedArchitectures(), ", "))
	}
	c := Config{Arch: arch, Rope: rt}
	req := func(key string) (int, error) {
		v, ok := kvNumber(kv, arch+"."+key)
		if !ok {
			return 0, fmt.Errorf("missing or non-numeric key %s.%s", arch, key)
		}
		if v <= 0 || v != math.Trunc(v) {
			return 0, fmt.Errorf("key %s.%s = %v: want a positive integer", arch, key, v)
		}
		return int(v), nil
	}
	opt := func(key string, def float64) float64 {
		if v, ok := kvNumber(kv, arch+"."+key); ok {
			return v
		}
		return def
	}
	var err error
	if c.NLayer, err = req("block_count"); err != nil {
		return c, err
	}
	if c.NEmbd, err = req("embedding_length"); err != nil {
		return c, err
	}
	if c.NFF, err = req("feed_forward_length"); err != nil {
		return c, err
	}
	if c.NHead, err = req("attention.head_count"); err != nil {
		return c, err
	}
	c.NHeadKV = int(opt("attention.head_count_kv", float64(c.NHead)))
	if c.NHeadKV <= 0 || c.NHead%c.NHeadKV != 0 {
		return c, fmt.Errorf("attention.head_count_kv %d does not divide head_count %d", c.NHeadKV, c.NHead)
	}
	c.HeadDim = int(opt("attention.key_length", float64(c.NEmbd/c.NHead)))
	if vl := int(opt("attention.value_length", float64(c.HeadDim))); vl != c.HeadDim {
		return c, fmt.Errorf("attention.value_length %d != key_length %d is not supported", vl, c.HeadDim)
	}
	c.NCtx = int(opt("context_length", 0))
	c.NRot = int(opt("rope.dimension_count", float64(c.HeadDim)))
	if c.NRot <= 0 || c.NRot > c.HeadDim || c.NRot%2 != 0 {
		return c, fmt.Errorf("rope.dimension_count %d invalid for head dim %d", c.NRot, c.HeadDim)
	}
	eps, ok := kvNumber(kv, arch+".attention.layer_norm_rms_epsilon")
	if !ok {
		return c, fmt.Errorf("missing key %s.attention.layer_norm_rms_epsilon", arch)
	}
	c.RMSEps = float32(eps)
	c.RopeBase = float32(opt("rope.freq_base", 10000))
	c.RopeScale = 1
	scaling, _ := kv[arch+".rope.scaling.type"].(string)
	switch scaling {
	case "", "none":
	case "linear":
		f := opt("rope.scaling.factor", 1)
		if f <= 0 {
			return c, fmt.Errorf("rope.scaling.factor %v must be positive", f)
		}
		c.RopeScale = float32(1 / f)
	default:
		return c, fmt.Errorf("rope scaling %q is not supported (none, linear)", scaling)
	}
	// Old GGUFs store linear scaling as rope.scale_linear.
	if f := opt("rope.scale_linear", 0); f > 0 && scaling == "" {
		c.RopeScale = float32(1 / f)
	}
	switch arch {
	case "qwen2vl":
		if err := c.readSections(kv); err != nil {
			return c, err
		}
	case "qwen3":
		c.QKNorm = true
		if c.NRot != c.HeadDim {
			return c, fmt.Errorf("%s: rope.dimension_count %d must equal the head dim %d (llama.cpp asserts it)", arch, c.NRot, c.HeadDim)
		}
	case "gemma3":
		c.QKNorm = true
		if err := c.readGemma(kv, opt); err != nil {
			return c, err
		}
	}
	return c, nil
}

// readSections reads qwen2vl's rope.dimension_sections (llama.cpp requires 4 int32 values and
// rotary dims equal to the head dim; ggml asserts sum(sections) <= n_rot, and pair i takes the
// component of sector i % sum, so a sum above the n_rot/2 pairs just leaves later sections unused).
func (c *Config) readSections(kv ggml.KV) error {
	key := c.Arch + ".rope.dimension_sections"
	// A decoded file holds the array as ggml's *array type (read with kv.Ints); a KV map built in
	// memory may hold a plain slice.
	var vals []int64
	ints := kv.Ints("rope.dimension_sections")
	if v, ok := kv[key].([]int32); ok {
		ints = v
	}
	for _, x := range ints {
		vals = append(vals, int64(x))
	}
	uints := kv.Uints("rope.dimension_sections")
	if v, ok := kv[key].([]uint32); ok {
		uints = v
	}
	for _, x := range uints {
		vals = append(vals, int64(x))
	}
	if len(vals) != 4 {
		return fmt.Errorf("key %s: want an array of 4 integers, got %v", key, kv[key])
	}
	sum := 0
	for i, x := range vals {
		if x < 0 {
			return fmt.Errorf("key %s = %v: negative section", key, vals)
		}
		c.RopeSections[i] = int(x)
		sum += int(x)
	}
	if sum == 0 || sum > c.NRot {
		return fmt.Errorf("key %s = %v: the sections must sum to between 1 and n_rot = %d", key, vals, c.NRot)
	}
	if c.NRot != c.HeadDim {
		return fmt.Errorf("%s: rope.dimension_count %d must equal the head dim %d (llama.cpp asserts it)", c.Arch, c.NRot, c.HeadDim)
	}
	return nil
}

// readGemma reads gemma3's hyper-parameters as llama.cpp's llama-model.cpp does.
func (c *Config) readGemma(kv ggml.KV, opt func(string, float64) float64) error {
	if cap := opt("final_logit_softcapping", 0); cap != 0 {
		return fmt.Errorf("gemma3: final_logit_softcapping = %v is not supported", cap)
	}
	g := &GemmaConfig{EmbedScale: float32(math.Sqrt(float64(c.NEmbd))), SWARopeBase: 10000}
	if c.NLayer == 62 { // llama.cpp's LLM_TYPE_27B: Gemma 3 27B scales queries by n_embd/n_head
		g.QueryScale = float32(1 / math.Sqrt(float64(c.NEmbd/c.NHead)))
	} else {
		g.QueryScale = float32(1 / math.Sqrt(float64(c.HeadDim)))
	}
	w := opt("attention.sliding_window", 0)
	if w < 0 || w != math.Trunc(w) {
		return fmt.Errorf("gemma3: attention.sliding_window = %v: want a non-negative integer", w)
	}
	g.SlidingWindow = int(w)
	if g.SlidingWindow > 0 && c.NLayer < 6 {
		return fmt.Errorf("gemma3: %d layers with a sliding window: llama.cpp needs at least 6 (every 6th layer is global)", c.NLayer)
	}
	c.Gemma = g
	return nil
}
