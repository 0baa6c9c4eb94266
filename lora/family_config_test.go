package lora

import (
	"math"
	"strings"
	"testing"

	"github.com/ollama/ollama/fs/ggml"
)

// familyKV is the metadata of a small model of arch a, as llama.cpp requires it.
func familyKV(a string) ggml.KV {
	return ggml.KV{
		"general.architecture":                  a,
		a + ".block_count":                      uint32(6),
		a + ".embedding_length":                 uint32(64),
		a + ".feed_forward_length":              uint32(128),
		a + ".attention.head_count":             uint32(4),
		a + ".attention.head_count_kv":          uint32(2),
		a + ".attention.layer_norm_rms_epsilon": float32(1e-6),
	}
}

// TestFamilyConfig: qwen2vl's sections and gemma3's extras are read as llama.cpp reads them, and
// bad values give clear errors.
func TestFamilyConfig(t *testing.T) {
	kv := familyKV("qwen2vl")
	kv["qwen2vl.rope.dimension_sections"] = []int32{2, 3, 3, 0}
	c, err := configFromKV(kv)
	if err != nil {
		t.Fatal(err)
	}
	if c.RopeSections != [4]int{2, 3, 3, 0} || !c.MRoPE() || c.Rope != RopeNeox || c.Gemma != nil {
		t.Fatalf("qwen2vl config %+v", c)
	}
	for _, bad := range []struct {
		v    any
		want string
	}{
		{nil, "want an array of 4 integers"},
		{[]int32{2, 3, 3}, "want an array of 4 integers"},
		{[]int32{8, 8, 8, 0}, "sum to between 1 and n_rot = 16"},
		{[]int32{0, 0, 0, 0}, "sum to between 1"},
		{[]int32{-1, 3, 3, 0}, "negative section"},
	} {
		kv := familyKV("qwen2vl")
		if bad.v != nil {
			kv["qwen2vl.rope.dimension_sections"] = bad.v
		}
		if _, err := configFromKV(kv); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("sections %v: error %v, want %q", bad.v, err, bad.want)
		}
	}

	// llama.cpp runs sections summing to more than the n_rot/2 pairs, up to n_rot (tiny-models.md
	// §3.3: [4,6,6,0] at head dim 16); the engine used to refuse them.
	kv = familyKV("qwen2vl")
	kv["qwen2vl.rope.dimension_sections"] = []int32{4, 6, 6, 0}
	if c, err := configFromKV(kv); err != nil || c.RopeSections != [4]int{4, 6, 6, 0} {
		t.Fatalf("sections [4 6 6 0] at head dim 16: %v %v", c.RopeSections, err)
	}

	kv = familyKV("gemma3")
	kv["gemma3.attention.key_length"] = uint32(32)
	kv["gemma3.attention.value_length"] = uint32(32)
	kv["gemma3.attention.sliding_window"] = uint32(512)
	kv["gemma3.rope.freq_base"] = float32(1e6)
	c, err = configFromKV(kv)
	if err != nil {
		t.Fatal(err)
	}
	g := c.Gemma
	if g == nil || g.SlidingWindow != 512 || g.SWARopeBase != 10000 || g.EmbedScale != float32(math.Sqrt(64)) ||
		g.QueryScale != float32(1/math.Sqrt(32)) || c.HeadDim != 32 || c.RopeBase != 1e6 || c.MRoPE() {
		t.Fatalf("gemma3 config %+v %+v", c, g)
	}
	var swa []int
	for il := 0; il < 12; il++ {
		if !c.IsSWA(il) {
			swa = append(swa, il)
		}
	}
	if len(swa) != 2 || swa[0] != 5 || swa[1] != 11 {
		t.Fatalf("global layers %v, want [5 11] ((il+1) %% 6 == 0)", swa)
	}
	kv["gemma3.block_count"] = uint32(62) // Gemma 3 27B: queries scaled by n_embd/n_head
	if c, _ := configFromKV(kv); c.Gemma.QueryScale != float32(1/math.Sqrt(16)) {
		t.Fatalf("62-layer query scale %g", c.Gemma.QueryScale)
	}
	delete(kv, "gemma3.attention.sliding_window")
	kv["gemma3.block_count"] = uint32(6)
	if c, _ := configFromKV(kv); c.IsSWA(0) {
		t.Fatal("layer 0 is a sliding-window layer without a window")
	}
	for _, bad := range []struct {
		key  string
		v    any
		want string
	}{
		{"gemma3.final_logit_softcapping", float32(30), "final_logit_softcapping"},
		{"gemma3.attention.sliding_window", float32(2.5), "sliding_window"},
	} {
		kv := familyKV("gemma3")
		kv[bad.key] = bad.v
		if _, err := configFromKV(kv); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s = %v: error %v, want %q", bad.key, bad.v, err, bad.want)
		}
	}
	kv = familyKV("gemma3")
	kv["gemma3.block_count"] = uint32(5)
	kv["gemma3.attention.sliding_window"] = uint32(512)
	if _, err := configFromKV(kv); err == nil || !strings.Contains(err.Error(), "at least 6") {
		t.Errorf("5 layers with a window: error %v", err)
	}
}
