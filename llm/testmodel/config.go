// Package testmodel writes deterministic random tiny vision-language models as GGUF files (a text model
// plus a CLIP-style mmproj) that llama.cpp loads exactly as it loads real ones. Tests and benchmarks use
// them so that no model has to be downloaded. The recipes (keys, tensor names, shapes, the traps that
// abort llama.cpp) follow shared/spec/tiny-models.md.
package testmodel

import (
	"fmt"
	"strings"
)

// Config selects the family and the sizes of the model. Zero values mean the family default.
type Config struct {
	// Family is "llava" (llama text + mlp projector; the default), "qwen2vl" (qwen2vl text with
	// M-RoPE + qwen2.5vl_merger), "gemma3", "smolvlm" (llama + idefics3) or "internvl" (qwen2 +
	// internvl). For a text-only benchmark model of the qwen2 architecture use "internvl" with
	// NoMMProj.
	Family string
	Seed   int64

	// Text model sizes; 0 = family default (64 wide, 4 heads, 2 KV heads, FFN 128, 2 layers;
	// gemma3 has 6 layers so that one layer is global, see tiny-models.md §3.4).
	Layers, Embd, Heads, KVHeads, FFN int

	// Vocab is the vocabulary size: 0 = the 324-token tiny vocabulary; a larger value pads it with
	// extra normal tokens (benchmark-sized models). Smaller than 324 is an error.
	Vocab int

	// WeightType is "f32" (default), "f16" or "q8_0". It applies to the matrices of both files;
	// norms, biases and position embeddings stay F32 (llama.cpp needs that, tiny-models.md §8).
	WeightType string

	// NoMMProj writes the text model only (benchmark models).
	NoMMProj bool

	// WeightStd is the standard deviation of the random weights and biases of both files; 0 means
	// 0.02. Larger values give sharper attention and logits, for tests that need position or image
	// effects well above float noise.
	WeightStd float32
}

// Files are the paths Write produced. MMProj is empty when Config.NoMMProj is set.
type Files struct{ Text, MMProj string }

// Families lists the supported families in the order they were added.
var Families = []string{"llava", "qwen2vl", "gemma3", "smolvlm", "internvl"}

// family describes what differs between families: the text architecture, the projector and the
// tokenizer conventions.
type family struct {
	name      string
	arch      string // llama.cpp text architecture
	projector string // clip.projector_type
	layers    int    // default layer count
	template  string // tokenizer.chat_template
	bos, eos  string // special-token texts
	addBOS    bool
}

var families = map[string]family{
	"llava":    {name: "llava", arch: "llama", projector: "mlp", layers: 2, template: chatmlTemplate, bos: "<|endoftext|>", eos: "<|im_end|>"},
	"qwen2vl":  {name: "qwen2vl", arch: "qwen2vl", projector: "qwen2.5vl_merger", layers: 2, template: chatmlTemplate, bos: "<|endoftext|>", eos: "<|im_end|>"},
	"gemma3":   {name: "gemma3", arch: "gemma3", projector: "gemma3", layers: 6, template: gemmaTemplate, bos: "<bos>", eos: "<eos>", addBOS: true},
	"smolvlm":  {name: "smolvlm", arch: "llama", projector: "idefics3", layers: 2, template: smolvlmTemplate, bos: "<|im_start|>", eos: "<end_of_utterance>"},
	"internvl": {name: "internvl", arch: "qwen2", projector: "internvl", layers: 2, template: chatmlTemplate, bos: "<|endoftext|>", eos: "<|im_end|>"},
}

// resolved is a Config with every default filled in and every size checked.
type resolved struct {
	Config
	fam     family
	headDim int
	kind    tensorKind
}

const maxDim = 1 << 20 // a sanity bound: larger sizes are a typo, not a model

func resolve(cfg Config) (resolved, error) {
	r := resolved{Config: cfg}
	if r.Family == "" {
		r.Family = "llava"
	}
	fam, ok := families[r.Family]
	if !ok {
		return r, fmt.Errorf("testmodel: unknown family %q (want one of %s)", cfg.Family, strings.Join(Families, ", "))
	}
	r.fam = fam
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&r.Layers, fam.layers)
	def(&r.Embd, 64)
	def(&r.Heads, 4)
	def(&r.KVHeads, 2)
	def(&r.FFN, 128)
	def(&r.Vocab, tinyVocabSize)
	for _, d := range []struct {
		name string
		v    int
	}{{"Layers", r.Layers}, {"Embd", r.Embd}, {"Heads", r.Heads}, {"KVHeads", r.KVHeads}, {"FFN", r.FFN}} {
		if d.v < 1 || d.v > maxDim {
			return r, fmt.Errorf("testmodel: %s = %d out of range [1, %d]", d.name, d.v, maxDim)
		}
	}
	if r.Vocab < tinyVocabSize || r.Vocab > 1<<24 {
		return r, fmt.Errorf("testmodel: Vocab = %d out of range [%d, %d]", r.Vocab, tinyVocabSize, 1<<24)
	}
	if r.Embd%r.Heads != 0 {
		return r, fmt.Errorf("testmodel: Embd %d is not a multiple of Heads %d", r.Embd, r.Heads)
	}
	if r.Heads%r.KVHeads != 0 {
		return r, fmt.Errorf("testmodel: Heads %d is not a multiple of KVHeads %d", r.Heads, r.KVHeads)
	}
	r.headDim = r.Embd / r.Heads
	if r.headDim%2 != 0 {
		return r, fmt.Errorf("testmodel: head dimension %d (Embd/Heads) must be even for RoPE", r.headDim)
	}
	if fam.arch == "qwen2vl" && r.headDim%8 != 0 {
		return r, fmt.Errorf("testmodel: qwen2vl head dimension %d must be a multiple of 8 (M-RoPE sections)", r.headDim)
	}
	if !(r.WeightStd >= 0 && r.WeightStd <= 10) { // also rejects NaN
		return r, fmt.Errorf("testmodel: WeightStd = %v out of range [0, 10]", cfg.WeightStd)
	}
	if r.WeightType == "" {
		r.WeightType = "f32"
	}
	kind, ok := weightKinds[r.WeightType]
	if !ok {
		return r, fmt.Errorf("testmodel: unknown weight type %q (want f32, f16 or q8_0)", cfg.WeightType)
	}
	r.kind = kind
	if kind == kindQ80 && (r.Embd%32 != 0 || r.FFN%32 != 0) {
		return r, fmt.Errorf("testmodel: q8_0 needs Embd (%d) and FFN (%d) to be multiples of 32", r.Embd, r.FFN)
	}
	return r, nil
}
