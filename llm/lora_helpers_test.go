package llm

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ollama/ollama/fs/ggml"
	"github.com/x448/float16"
)

// loraTargets are the matrices the test adapters touch in every layer.
var loraTargets = []string{"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}

// loraFile builds a GGUF LoRA adapter for the (F32) text model with random A and B (B is not
// zero as at the start of training, so that the adapter changes the logits), using the keys and
// layouts llama.cpp expects (llama-cpp-notes §2): A has ne [n_in, r], B has ne [r, n_out].
func loraFile(t testing.TB, text *ggufFile, seed uint64, rank int, alpha float32) *ggufFile {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x10ea))
	g := &ggufFile{kv: ggml.KV{
		"general.architecture": text.kv["general.architecture"],
		"general.type":         "adapter",
		"adapter.type":         "lora",
		"adapter.lora.alpha":   alpha,
	}}
	for l := 0; ; l++ {
		if text.tensor(fmt.Sprintf("blk.%d.attn_q.weight", l)) == nil {
			break
		}
		for _, target := range loraTargets {
			w := text.tensor(fmt.Sprintf("blk.%d.%s.weight", l, target))
			nIn, nOut := int(w.shape[0]), int(w.shape[1])
			a := make([]float32, rank*nIn)
			b := make([]float32, nOut*rank)
			for i := range a {
				a[i] = float32(rng.NormFloat64() * 0.2)
			}
			for i := range b {
				b[i] = float32(rng.NormFloat64() * 0.2)
			}
			g.tensors = append(g.tensors,
				&tensorBytes{name: w.name + ".lora_a", shape: []uint64{uint64(nIn), uint64(rank)}, data: f32Bytes(a)},
				&tensorBytes{name: w.name + ".lora_b", shape: []uint64{uint64(rank), uint64(nOut)}, data: f32Bytes(b)})
		}
	}
	return g
}

// mergedFile is the text model with every adapter pair folded in: W + (alpha/r)·B·A.
func mergedFile(t testing.TB, text, lora *ggufFile) *ggufFile {
	t.Helper()
	alpha := lora.kv["adapter.lora.alpha"].(float32)
	out := text.clone()
	out.tensors = nil
	for _, tb := range text.tensors {
		a, b := lora.tensor(tb.name+".lora_a"), lora.tensor(tb.name+".lora_b")
		if a == nil {
			out.tensors = append(out.tensors, tb)
			continue
		}
		w := tb.f32(t)
		av, bv := a.f32(t), b.f32(t)
		nIn, nOut, r := int(tb.shape[0]), int(tb.shape[1]), int(a.shape[1])
		scale := float64(alpha) / float64(r)
		for o := range nOut {
			for i := range nIn {
				s := 0.0
				for k := range r {
					s += float64(bv[o*r+k]) * float64(av[k*nIn+i])
				}
				w[o*nIn+i] += float32(scale * s)
			}
		}
		out.tensors = append(out.tensors, &tensorBytes{name: tb.name, kind: 0, shape: tb.shape, data: f32Bytes(w)})
	}
	return out
}

// asF16 converts an F32 adapter to F16 tensors; rounded is the same adapter with its values
// rounded to F16 but stored as F32 (the ground truth for merging).
func asF16(t testing.TB, g *ggufFile) (f16, rounded *ggufFile) {
	t.Helper()
	f16, rounded = g.clone(), g.clone()
	f16.tensors, rounded.tensors = nil, nil
	for _, tb := range g.tensors {
		v := tb.f32(t)
		h := make([]byte, 2*len(v))
		r := make([]float32, len(v))
		for i, x := range v {
			bits := float16.Fromfloat32(x)
			binary.LittleEndian.PutUint16(h[2*i:], bits.Bits())
			r[i] = bits.Float32()
		}
		f16.tensors = append(f16.tensors, &tensorBytes{name: tb.name, kind: 1, shape: tb.shape, data: h})
		rounded.tensors = append(rounded.tensors, &tensorBytes{name: tb.name, shape: tb.shape, data: f32Bytes(r)})
	}
	return f16, rounded
}
