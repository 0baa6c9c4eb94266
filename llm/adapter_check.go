package llm

import (
	"strings"

	"github.com/vzlocal/vzlocal/internal/ggmlquant"
)

// adapterInfo is what a checked adapter file says about itself.
type adapterInfo struct {
	alpha float32
	names []string // tensor names
}

// Tensor types llama.cpp's LoRA path multiplies with, and that Update can write.
var adapterKinds = map[uint32]bool{ggmlquant.TypeF32: true, ggmlquant.TypeF16: true, ggmlquant.TypeBF16: true}

// checkAdapter validates a LoRA GGUF against the model's architecture before llama.cpp reads it
// (an adapter.lora.alpha of the wrong type aborts the process).
func checkAdapter(path, arch string) (adapterInfo, error) {
	const kind = "adapter"
	g, err := readHeader(kind, path, maxHeaderArray)
	if err != nil {
		return adapterInfo{}, err
	}
	kv := g.KV()
	bad := func(format string, args ...any) (adapterInfo, error) {
		return adapterInfo{}, fileErr(kind, path, format, args...)
	}
	if t, _ := kv["general.type"].(string); t != "adapter" {
		return bad("not an adapter: general.type is %q, want \"adapter\"", t)
	}
	if t, _ := kv["adapter.type"].(string); t != "lora" {
		return bad("adapter.type is %q, want \"lora\"", t)
	}
	if a, _ := kv["general.architecture"].(string); a != arch {
		return bad("made for architecture %q, the model is %q", a, arch)
	}
	var info adapterInfo
	if v, present := kv["adapter.lora.alpha"]; present {
		a, ok := v.(float32)
		if !ok {
			return bad("key adapter.lora.alpha %s", typeProblem(v, "float32"))
		}
		info.alpha = a
	}
	pairs := map[string]int{}
	for _, t := range g.Tensors().Items() {
		base, ok := strings.CutSuffix(t.Name, ".lora_a")
		if !ok {
			base, ok = strings.CutSuffix(t.Name, ".lora_b")
		}
		if !ok {
			return bad("tensor %s is not a .lora_a or .lora_b tensor", t.Name)
		}
		if !adapterKinds[t.Kind] {
			return bad("tensor %s has type %s; adapters must be F32, F16 or BF16", t.Name, t.Type())
		}
		if len(t.Shape) != 2 {
			return bad("tensor %s has %d dimensions, want 2", t.Name, len(t.Shape))
		}
		pairs[base]++
		info.names = append(info.names, t.Name)
	}
	if len(info.names) == 0 {
		return bad("has no tensors")
	}
	for base, n := range pairs {
		if n != 2 {
			return bad("tensor %s has only one of .lora_a and .lora_b", base)
		}
	}
	return info, nil
}
