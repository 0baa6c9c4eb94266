package testmodel

import "fmt"

// textKV returns the metadata of the text model (tiny-models.md §2.1 and §3.1). Keys without a
// "general."/"tokenizer." prefix get "<arch>." prepended by ggml.WriteGGUF. Integer hparams must be
// uint32 and epsilons float32: llama.cpp rejects other types.
func textKV(r resolved, v vocab) (map[string]any, error) {
	f := r.fam
	ids := map[string]int{}
	for _, t := range []string{f.bos, f.eos, padToken(f)} {
		ids[t] = tokenIndex(v, t)
		if ids[t] < 0 {
			return nil, fmt.Errorf("testmodel: family %s names token %q, missing from the vocabulary", f.name, t)
		}
	}
	kv := map[string]any{
		"general.architecture": f.arch,
		"general.name":         fmt.Sprintf("vzlocal tiny %s (seed %d)", f.name, r.Seed),
		"general.file_type":    fileTypes[r.kind],

		"context_length":                   uint32(2048),
		"embedding_length":                 uint32(r.Embd),
		"block_count":                      uint32(r.Layers),
		"feed_forward_length":              uint32(r.FFN),
		"attention.head_count":             uint32(r.Heads),
		"attention.head_count_kv":          uint32(r.KVHeads),
		"attention.layer_norm_rms_epsilon": float32(1e-6),
		"rope.freq_base":                   float32(10000),

		"tokenizer.ggml.model":            "gpt2",
		"tokenizer.ggml.pre":              "qwen2",
		"tokenizer.ggml.tokens":           v.tokens,
		"tokenizer.ggml.token_type":       v.types,
		"tokenizer.ggml.merges":           v.merges,
		"tokenizer.ggml.bos_token_id":     uint32(ids[f.bos]),
		"tokenizer.ggml.eos_token_id":     uint32(ids[f.eos]),
		"tokenizer.ggml.padding_token_id": uint32(ids[padToken(f)]),
		"tokenizer.ggml.add_bos_token":    f.addBOS,
		"tokenizer.chat_template":         f.template,
	}
	switch f.arch {
	case "llama":
		kv["rope.dimension_count"] = uint32(r.headDim)
	case "qwen2vl":
		kv["rope.dimension_sections"] = mropeSections(r.headDim)
	case "gemma3":
		kv["attention.key_length"] = uint32(r.headDim)
		kv["attention.value_length"] = uint32(r.headDim)
		// llama.cpp makes every 6th layer global when a sliding window is set; with fewer than 6
		// layers the global KV cache would be empty and the first decode aborts (§3.4).
		if r.Layers >= 6 {
			kv["attention.sliding_window"] = uint32(512)
		}
	}
	return kv, nil
}

// mropeSections splits head_dim/2 rotary pairs into the t, y, x, (unused) sections in Qwen2.5-VL's
// proportions ([16,24,24,0] at head_dim 128; [2,3,3,0] at 16).
func mropeSections(headDim int) []int32 {
	half := headDim / 2
	t := headDim / 8
	y := (half - t) / 2
	return []int32{int32(t), int32(y), int32(half - t - y), 0}
}

func padToken(f family) string {
	if f.arch == "gemma3" {
		return "<pad>"
	}
	return "<|endoftext|>"
}

// tokenIndex returns the id of the token with the given text, or -1.
func tokenIndex(v vocab, text string) int {
	for i, t := range v.tokens {
		if t == text {
			return i
		}
	}
	return -1
}

// textTensors lists the text model's tensors (tiny-models.md §3.2).
func textTensors(r resolved) []tensorSpec {
	e, ff, kvw := r.Embd, r.FFN, r.KVHeads*r.headDim
	arch := r.fam.arch
	ts := []tensorSpec{
		weight("token_embd.weight", e, r.Vocab),
		ones("output_norm.weight", e),
	}
	if arch != "gemma3" { // gemma3 ties the output to token_embd
		ts = append(ts, weight("output.weight", e, r.Vocab))
	}
	for i := range r.Layers {
		p := fmt.Sprintf("blk.%d.", i)
		ts = append(ts,
			ones(p+"attn_norm.weight", e),
			weight(p+"attn_q.weight", e, e),
			weight(p+"attn_k.weight", e, kvw),
			weight(p+"attn_v.weight", e, kvw),
			weight(p+"attn_output.weight", e, e),
			ones(p+"ffn_norm.weight", e),
			weight(p+"ffn_gate.weight", e, ff),
			weight(p+"ffn_up.weight", e, ff),
			weight(p+"ffn_down.weight", ff, e),
		)
		switch arch {
		case "qwen2vl", "qwen2":
			// qwen2vl's graph adds these unconditionally (a missing one segfaults at context
			// creation); for qwen2 they are optional but real Qwen2 has them.
			ts = append(ts, bias(p+"attn_q.bias", e), bias(p+"attn_k.bias", kvw), bias(p+"attn_v.bias", kvw))
		case "gemma3":
			ts = append(ts,
				ones(p+"attn_q_norm.weight", r.headDim),
				ones(p+"attn_k_norm.weight", r.headDim),
				ones(p+"post_attention_norm.weight", e),
				ones(p+"post_ffw_norm.weight", e),
			)
		}
	}
	return ts
}
