package lora

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ollama/ollama/llama"
	"github.com/ollama/ollama/ml"

	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// llamaCppLogits decodes (optional embedding rows at positions 0..k-1, then) tokens through
// llama.cpp with logits at every position, on a fresh 1-thread context; adapterPath, when set, is
// applied before the first decode.
func llamaCppLogits(t *testing.T, modelPath, adapterPath string, embeds [][]float32, tokens []int32) [][]float32 {
	t.Helper()
	model, err := llama.LoadModelFromFile(modelPath, llama.ModelParams{NumGpuLayers: 0, UseMmap: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { llama.FreeModel(model) })
	n := len(embeds) + len(tokens)
	ctx, err := llama.NewContextWithModel(model, llama.NewContextParams(n+8, n, 1, 1, ml.FlashAttentionDisabled, ""))
	if err != nil {
		t.Fatal(err)
	}
	if adapterPath != "" {
		if err := model.ApplyLoraFromFile(ctx, adapterPath, 1.0, 1); err != nil {
			t.Fatal(err)
		}
	}
	var out [][]float32
	if len(embeds) > 0 {
		b, err := llama.NewBatch(len(embeds), 1, len(embeds[0]))
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range embeds {
			b.Add(0, e, i, true, 0)
		}
		if err := ctx.Decode(b); err != nil {
			t.Fatal(err)
		}
		for i := range embeds {
			out = append(out, ctx.GetLogitsIth(i))
		}
		b.Free()
	}
	b, err := llama.NewBatch(len(tokens), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Free()
	for i, tok := range tokens {
		b.Add(int(tok), nil, len(embeds)+i, true, 0)
	}
	if err := ctx.Decode(b); err != nil {
		t.Fatal(err)
	}
	for i := range tokens {
		out = append(out, ctx.GetLogitsIth(i))
	}
	return out
}

// maxDiff returns the max |a-b| over all logits and the largest |b| for scale.
func maxDiff(a, b [][]float32) (diff, scale float64) {
	for i := range a {
		for j := range a[i] {
			diff = math.Max(diff, math.Abs(float64(a[i][j]-b[i][j])))
			scale = math.Max(scale, math.Abs(float64(b[i][j])))
		}
	}
	return diff, scale
}

// TestForwardParityWithLlamaCpp compares the engine's logits at every position with llama.cpp's on
// the same F32 GGUF, without and with an adapter that llama.cpp reads from our GGUF adapter file.
// Tolerance: llama.cpp keeps K and V in an F16 cache (the Go binding offers no F32 cache), which
// perturbs logits by about 1e-3 relative; we require max|diff| <= 2e-3 * max|logit| + 1e-4.
// For the Q8_0 model both sides use the same dequantized weights, but llama.cpp's Q8_0 matmul also
// quantizes the activations to Q8_0 (its vec_dot type), so there the bound is 3e-2 relative.
func TestForwardParityWithLlamaCpp(t *testing.T) {
	type model struct {
		name   string
		path   func(t *testing.T) string
		relTol float64
	}
	fromTestmodel := func(family string) func(t *testing.T) string {
		return func(t *testing.T) string {
			f, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: family, Seed: 1, NoMMProj: true})
			if err != nil {
				t.Fatal(err)
			}
			return f.Text
		}
	}
	ours := func(arch string, kind uint32, ropeFreqs bool) func(t *testing.T) string {
		return func(t *testing.T) string {
			c := tinyConfig(arch)
			c.NEmbd, c.NHead, c.HeadDim, c.NRot, c.NFF = 64, 4, 16, 16, 128
			if ropeFreqs { // llama3-style per-frequency divisors (rope_freqs.weight)
				c.RopeFreqs = []float32{1, 1, 1.5, 2, 3, 5, 8, 8}
			}
			p := tempPath(t, arch+".gguf")
			writeModelGGUF(t, p, RandomModel(c, 3), kind)
			return p
		}
	}
	models := []model{
		{"testmodel-llava", fromTestmodel("llava"), 2e-3},
		{"testmodel-internvl-qwen2", fromTestmodel("internvl"), 2e-3},
		{"random-llama", ours("llama", TypeF32, false), 2e-3},
		{"random-llama-rope-freqs", ours("llama", TypeF32, true), 2e-3},
		{"random-qwen2", ours("qwen2", TypeF32, false), 2e-3},
		{"random-qwen3", ours("qwen3", TypeF32, false), 2e-3},
		{"random-qwen3-wide-heads", func(t *testing.T) string { // Qwen3's head_dim > n_embd/n_head
			c := tinyConfig("qwen3")
			c.NEmbd, c.NHead, c.HeadDim, c.NRot, c.NFF = 64, 4, 32, 32, 128
			p := tempPath(t, "qwen3w.gguf")
			writeModelGGUF(t, p, RandomModel(c, 3), TypeF32)
			return p
		}, 2e-3},
		{"random-llama-q8_0", ours("llama", TypeQ8_0, false), 3e-2},
	}
	for _, md := range models {
		t.Run(md.name, func(t *testing.T) {
			path := md.path(t)
			e, err := LoadCPU(path, Options{Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			c := e.Config()
			r := rand.New(rand.NewPCG(5, 5))
			tokens := make([]int32, 24)
			for i := range tokens {
				tokens[i] = int32(r.IntN(c.NVocab))
			}
			var embeds [][]float32
			if md.name == "random-llama" {
				for range 5 { // image-like rows before the text, as mmproj rows would be
					row := make([]float32, c.NEmbd)
					for j := range row {
						row[j] = float32(r.NormFloat64())
					}
					embeds = append(embeds, row)
				}
			}
			seq := Sequence{Tokens: make([]int32, len(embeds)), Embeds: nil}
			seq.Tokens = append(seq.Tokens, tokens...)
			if len(embeds) > 0 {
				var flat []float32
				for _, e := range embeds {
					flat = append(flat, e...)
				}
				seq.Embeds = []EmbedSpan{{Pos: 0, Rows: flat}}
			}
			ad := randomAdapter(t, c, 4, 8, 11)
			adPath := tempPath(t, "adapter.gguf")
			if err := ad.WriteGGUF(adPath, TypeF32); err != nil {
				t.Fatal(err)
			}
			for _, withAdapter := range []bool{false, true} {
				t.Run(fmt.Sprintf("adapter=%v", withAdapter), func(t *testing.T) {
					if withAdapter {
						withAttnBlock(t, 5) // and several attention query blocks
					}
					var a *Adapter
					ap := ""
					if withAdapter {
						a, ap = ad, adPath
					}
					if err := e.SetAdapter(a); err != nil {
						t.Fatal(err)
					}
					ours, err := e.Logits(seq)
					if err != nil {
						t.Fatal(err)
					}
					ref := llamaCppLogits(t, path, ap, embeds, tokens)
					diff, scale := maxDiff(ours, ref)
					tol := md.relTol*scale + 1e-4
					e.emulateF16KV = true
					emu, _ := e.Logits(seq)
					e.emulateF16KV = false
					emuDiff, _ := maxDiff(emu, ref)
					t.Logf("max |logit diff| %.3g (max |logit| %.3g, tol %.3g); with f16 K/V/P emulated %.3g", diff, scale, tol, emuDiff)
					if diff > tol {
						t.Fatalf("logits differ from llama.cpp: max diff %g > %g", diff, tol)
					}
					if md.relTol < 1e-2 && emuDiff > md.relTol*scale/4 {
						t.Fatalf("with llama.cpp's f16 K/V rounding emulated logits still differ by %g", emuDiff)
					}
				})
			}
			// An F16 adapter file: llama.cpp reads the rounded values, so the engine uses them too.
			t.Run("adapter=f16", func(t *testing.T) {
				p16 := tempPath(t, "adapter16.gguf")
				if err := ad.WriteGGUF(p16, TypeF16); err != nil {
					t.Fatal(err)
				}
				a16 := ad.Clone()
				for _, p := range a16.Params() {
					roundF16(p)
				}
				e.SetAdapter(a16)
				ours, err := e.Logits(seq)
				if err != nil {
					t.Fatal(err)
				}
				ref := llamaCppLogits(t, path, p16, embeds, tokens)
				diff, scale := maxDiff(ours, ref)
				if tol := md.relTol*scale + 1e-4; diff > tol {
					t.Fatalf("F16 adapter: logits differ from llama.cpp by %g > %g", diff, tol)
				}
			})
			// The adapter must matter, or the with-adapter comparison proves nothing.
			e.SetAdapter(nil)
			base, _ := e.Logits(seq)
			e.SetAdapter(ad)
			adapted, _ := e.Logits(seq)
			if d, s := maxDiff(base, adapted); d < 0.05*s {
				t.Fatalf("adapter changes logits by only %g (scale %g)", d, s)
			}
		})
	}
}
