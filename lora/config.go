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

// archRope lists the supported text architectures and their rope type.
var archRope = map[string]RopeType{
	"llama": RopeNorm,
	"qwen2": RopeNeox,
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
	return c, nil
}
