package lora

import (
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/ollama/ollama/fs/ggml"

	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// The test-model generator writes every norm weight as 1, which cannot tell w from 1+w or a
// per-head norm applied to the wrong elements. This test rewrites the text GGUF with random norm
// weights and repeats the image-prompt parity check.

// withRandomNorms copies the GGUF at src to dst with every "*norm.weight" tensor (F32) replaced by
// 1 + 0.5 N(0, 1) values and the metadata in kvSet overriding the source's; everything else is
// copied unchanged.
func withRandomNorms(t *testing.T, src, dst string, seed uint64, kvSet map[string]any) int {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := ggml.Decode(f, -1)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 7))
	var ts []*ggml.Tensor
	changed := 0
	for _, tn := range g.Tensors().Items() {
		data := make([]byte, tn.Size())
		if _, err := f.ReadAt(data, int64(g.Tensors().Offset+tn.Offset)); err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(tn.Name, "norm.weight") {
			if tn.Kind != TypeF32 {
				t.Fatalf("%s is not F32", tn.Name)
			}
			w := make([]float32, tn.Elements())
			for i := range w {
				w[i] = float32(1 + 0.5*r.NormFloat64())
			}
			data = f32Bytes(w)
			changed++
		}
		ts = append(ts, &ggml.Tensor{Name: tn.Name, Kind: tn.Kind, Shape: tn.Shape, WriterTo: rawWriter(data)})
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	kv := g.KV()
	for k, v := range kvSet {
		kv[k] = v
	}
	if err := ggml.WriteGGUF(out, kv, ts); err != nil {
		t.Fatal(err)
	}
	return changed
}

// imagePromptLogits is the sequence of an image prompt ("What is in the picture?") and the
// completion "Two spheres.", and llama.cpp's logits for it.
func imagePromptLogits(t *testing.T, m *llm.Model) (Sequence, [][]float32) {
	t.Helper()
	p, err := m.ChatPrompt("", "What is in the picture?", testmodel.TestImage(40, 30, 2))
	if err != nil {
		t.Fatal(err)
	}
	completion, err := m.TokenizeText("Two spheres.", false)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := m.Logits(p, completion)
	if err != nil {
		t.Fatal(err)
	}
	return promptSequence(p, m.Info(), completion), ref
}

// TestFamilyRandomNormsParity: qwen2vl and gemma3 (q/k norms per head, post-attention and post-FFN
// norms, output norm) with random norm weights agree with llama.cpp on an image prompt within the
// emulated-flash-attention bound of TestFamilyImageParity. The gemma3 model is also given an
// 8-position sliding window (the generator's 512 never masks a short prompt) and a global RoPE base
// of 1e6, so that the sliding-window layers' mask and their own base of 10000 are both exercised.
func TestFamilyRandomNormsParity(t *testing.T) {
	for _, family := range []string{"qwen2vl", "gemma3"} {
		t.Run(family, func(t *testing.T) {
			f, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: family, Seed: 2, WeightStd: 0.1})
			if err != nil {
				t.Fatal(err)
			}
			text := tempPath(t, "text.gguf")
			kvSet := map[string]any{}
			if family == "gemma3" {
				kvSet["gemma3.attention.sliding_window"] = uint32(8)
				kvSet["gemma3.rope.freq_base"] = float32(1e6)
			}
			n := withRandomNorms(t, f.Text, text, 3, kvSet)
			m, err := llm.Load(text, f.MMProj, llm.Options{Threads: 1, ContextSize: 512})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			e, err := LoadCPU(text, Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			if g := e.Config().Gemma; family == "gemma3" && (g == nil || g.SlidingWindow != 8 || e.Config().RopeBase != 1e6) {
				t.Fatalf("gemma3 config not as written: %+v", e.Config())
			}
			seq, ref := imagePromptLogits(t, m)
			ours, err := e.Logits(seq)
			if err != nil {
				t.Fatal(err)
			}
			e.emulateF16KV, e.emulateFlashAttn = true, true
			emu, err := e.Logits(seq)
			if err != nil {
				t.Fatal(err)
			}
			diff, scale, rows := textRowsDiff(ours, ref)
			emuDiff, _, _ := textRowsDiff(emu, ref)
			t.Logf("%d norm tensors randomized, %d text rows: max |logit diff| %.3g (tol %.3g), emulated %.3g (tol %.3g), max |logit| %.3g",
				n, rows, diff, familyTol(scale), emuDiff, emuTol(scale), scale)
			if diff > familyTol(scale) || emuDiff > emuTol(scale) {
				t.Fatalf("logits differ from llama.cpp: %g (bound %g), emulated %g (bound %g)", diff, familyTol(scale), emuDiff, emuTol(scale))
			}
			if family != "gemma3" {
				return
			}
			// Each sliding-window feature must matter at this bound, or the match proves nothing.
			e.emulateF16KV, e.emulateFlashAttn = false, false
			orig := *e.m.Cfg.Gemma
			for _, v := range []struct {
				name string
				edit func(g *GemmaConfig)
			}{{"no window", func(g *GemmaConfig) { g.SlidingWindow = 0 }}, {"global RoPE base everywhere", func(g *GemmaConfig) { g.SWARopeBase = 1e6 }}} {
				g := orig
				v.edit(&g)
				e.m.Cfg.Gemma = &g
				wrong, err := e.Logits(seq)
				e.m.Cfg.Gemma = &orig
				if err != nil {
					t.Fatal(err)
				}
				d, _, _ := textRowsDiff(wrong, ref)
				t.Logf("%s: logits differ from llama.cpp's by %.3g", v.name, d)
				if d <= familyTol(scale) {
					t.Fatalf("%s goes unnoticed: diff %g <= %g", v.name, d, familyTol(scale))
				}
			}
		})
	}
}

// TestMRoPEWideSectionsParity: M-RoPE sections summing to more than the n_rot/2 rotary pairs (up to
// n_rot, which llama.cpp accepts: [4,6,6,0] at head dim 16 leaves w unused) rotate as llama.cpp
// rotates them; the engine used to refuse such a model.
func TestMRoPEWideSectionsParity(t *testing.T) {
	f, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "qwen2vl", Seed: 2, WeightStd: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	text := tempPath(t, "text.gguf")
	withRandomNorms(t, f.Text, text, 3, map[string]any{"qwen2vl.rope.dimension_sections": []int32{4, 6, 6, 0}})
	m, err := llm.Load(text, f.MMProj, llm.Options{Threads: 1, ContextSize: 512})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	e, err := LoadCPU(text, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if e.Config().RopeSections != [4]int{4, 6, 6, 0} {
		t.Fatalf("sections %v", e.Config().RopeSections)
	}
	seq, ref := imagePromptLogits(t, m)
	e.emulateF16KV, e.emulateFlashAttn = true, true
	emu, err := e.Logits(seq)
	if err != nil {
		t.Fatal(err)
	}
	diff, scale, _ := textRowsDiff(emu, ref)
	if diff > emuTol(scale) {
		t.Fatalf("logits differ from llama.cpp: %g (bound %g)", diff, emuTol(scale))
	}
	// The sections must matter at this bound: the default split gives other logits.
	e.m.Cfg.RopeSections = [4]int{2, 3, 3, 0}
	other, err := e.Logits(seq)
	if err != nil {
		t.Fatal(err)
	}
	if d, _, _ := textRowsDiff(other, ref); d <= emuTol(scale) {
		t.Fatalf("other sections give the same logits (diff %g): the test proves nothing", d)
	}
}
