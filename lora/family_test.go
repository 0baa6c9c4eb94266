package lora

import (
	"fmt"
	"math"
	"testing"

	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// Image-prompt parity for every VLM family the test-model generator writes: the prompt goes through
// llama.cpp exactly as the rollout engine feeds it (llm.Model.Logits: mtmd image chunks, M-RoPE
// positions, gemma3's non-causal image rows) and through this engine built from the same llm.Prompt.

// promptSequence builds the engine's sequence for a prompt and a completion: image rows at their
// indices (non-causal where the model decodes them so), positions as llama.cpp assigns them.
func promptSequence(p *llm.Prompt, info llm.Info, completion []int32) Sequence {
	n := len(p.Tokens)
	seq := Sequence{Tokens: make([]int32, n+len(completion))}
	copy(seq.Tokens, p.Tokens)
	copy(seq.Tokens[n:], completion)
	for i, t := range seq.Tokens {
		if t == llm.ImageRow {
			seq.Tokens[i] = 0
		}
	}
	for _, sp := range p.Images {
		seq.Embeds = append(seq.Embeds, EmbedSpan{Pos: sp.Index, Rows: sp.Embd, NonCausal: info.NonCausalImages})
	}
	pos := append(p.Positions(info.MRoPE), make([]int32, len(completion))...)
	for k := range completion {
		pos[n+k] = int32(p.NPos + k)
	}
	if !info.MRoPE {
		seq.Positions = pos
		return seq
	}
	seq.Positions4 = make([][4]int32, len(pos))
	for i, q := range pos {
		seq.Positions4[i] = [4]int32{q, q, q, 0}
	}
	for _, sp := range p.Images {
		for r := 0; r < sp.Rows; r++ {
			seq.Positions4[sp.Index+r] = [4]int32{int32(sp.Pos), int32(sp.Pos + r/sp.NX), int32(sp.Pos + r%sp.NX), 0}
		}
	}
	return seq
}

// familyModel writes a family's tiny model and loads it in both engines.
type familyModel struct {
	files testmodel.Files
	m     *llm.Model
	e     *CPU
}

func loadFamily(t *testing.T, family string, std float32) *familyModel {
	t.Helper()
	f, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: family, Seed: 1, WeightStd: std})
	if err != nil {
		t.Fatal(err)
	}
	m, err := llm.Load(f.Text, f.MMProj, llm.Options{Threads: 1, ContextSize: 512})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	e, err := LoadCPU(f.Text, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return &familyModel{files: f, m: m, e: e}
}

// textRowsDiff compares our logits with llama.cpp's on the rows llama.cpp returns (text rows).
func textRowsDiff(ours, ref [][]float32) (diff, scale float64, rows int) {
	for i := range ref {
		if ref[i] == nil {
			continue
		}
		rows++
		d, s := maxDiff(ours[i:i+1], ref[i:i+1])
		diff, scale = math.Max(diff, d), math.Max(scale, s)
	}
	return diff, scale, rows
}

// Parity bounds. The rollout engine's llama.cpp context runs CPU flash attention over an F16 KV
// cache: q is rounded to f16 and the attention output is accumulated in f16, which moves logits by
// up to about 5e-3 relative (measured 2e-3 to 4.6e-3 here); familyTol bounds the plain engine. With
// that kernel emulated (emulateF16KV + emulateFlashAttn, plus ggml's f16 GELU table for gemma3) the
// remaining difference is float32 summation order, measured at most 8.5e-4 relative: emuTol.
func familyTol(scale float64) float64 { return 6e-3*scale + 1e-4 }

func emuTol(scale float64) float64 { return 1.2e-3*scale + 1e-4 }

// TestFamilyImageParity: for every family, logits at every text row of a chat prompt with a 40x30
// image plus a completion agree with llama.cpp's within familyTol, without and with an adapter
// that llama.cpp reads from our GGUF adapter file.
func TestFamilyImageParity(t *testing.T) {
	for _, family := range testmodel.Families {
		t.Run(family, func(t *testing.T) {
			fm := loadFamily(t, family, 0.1)
			info := fm.m.Info()
			p, err := fm.m.ChatPrompt("You are a careful observer.", "What is in the picture?", testmodel.TestImage(40, 30, 1))
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Images) == 0 {
				t.Fatal("the prompt has no image rows")
			}
			completion, err := fm.m.TokenizeText("A red cube.", false)
			if err != nil {
				t.Fatal(err)
			}
			seq := promptSequence(p, info, completion)
			ad := randomAdapter(t, fm.e.Config(), 4, 8, 11)
			adPath := tempPath(t, "adapter.gguf")
			if err := ad.WriteGGUF(adPath, TypeF32); err != nil {
				t.Fatal(err)
			}
			la, err := fm.m.LoadAdapter(adPath)
			if err != nil {
				t.Fatal(err)
			}
			var base [][]float32
			for _, withAdapter := range []bool{false, true} {
				t.Run(fmt.Sprintf("adapter=%v", withAdapter), func(t *testing.T) {
					var a *Adapter
					var l *llm.Adapter
					if withAdapter {
						a, l = ad, la
					}
					if err := fm.e.SetAdapter(a); err != nil {
						t.Fatal(err)
					}
					if err := fm.m.SetAdapter(l, 1); err != nil {
						t.Fatal(err)
					}
					ref, err := fm.m.Logits(p, completion)
					if err != nil {
						t.Fatal(err)
					}
					ours, err := fm.e.Logits(seq)
					if err != nil {
						t.Fatal(err)
					}
					diff, scale, rows := textRowsDiff(ours, ref)
					fm.e.emulateF16KV, fm.e.emulateFlashAttn = true, true
					emu, _ := fm.e.Logits(seq)
					fm.e.emulateF16KV, fm.e.emulateFlashAttn = false, false
					emuDiff, _, _ := textRowsDiff(emu, ref)
					t.Logf("%d image rows in %d spans, %d text rows compared: max |logit diff| %.3g (max |logit| %.3g, tol %.3g); flash attention emulated %.3g (tol %.3g)",
						len(p.Tokens)-rows+len(completion), len(p.Images), rows, diff, scale, familyTol(scale), emuDiff, emuTol(scale))
					if diff > familyTol(scale) {
						t.Fatalf("logits differ from llama.cpp: max diff %g > %g", diff, familyTol(scale))
					}
					if emuDiff > emuTol(scale) {
						t.Fatalf("with llama.cpp's flash attention emulated logits still differ by %g > %g", emuDiff, emuTol(scale))
					}
					if withAdapter {
						if d, s := maxDiff(ours, base); d < 0.05*s {
							t.Fatalf("the adapter changes logits by only %g (scale %g): the comparison proves nothing", d, s)
						}
					} else {
						base = ours
					}
				})
			}
		})
	}
}

// TestImagePositionBothEngines: moving the image from before the question to after it changes the
// next-token logits, and both engines see the same change (within twice the emulated parity
// bound, while the change itself is far larger). Then the check is shown to fail when the engine is
// given llama.cpp-unlike input: 1-D sequential positions for qwen2vl's image rows (what the plain
// Go llama binding feeds), or a causal image span for gemma3.
func TestImagePositionBothEngines(t *testing.T) {
	for _, family := range testmodel.Families {
		t.Run(family, func(t *testing.T) {
			fm := loadFamily(t, family, 0.1)
			info := fm.m.Info()
			img := testmodel.TestImage(40, 30, 1)
			marker := llm.MediaMarker()
			var refLast, oursLast [2][]float32
			var seqs [2]Sequence
			var refs [2][][]float32
			for i, user := range []string{marker + "\nWhat is this?", "What is this?\n" + marker} {
				p, err := fm.m.ChatPrompt("", user, img)
				if err != nil {
					t.Fatal(err)
				}
				ref, err := fm.m.Logits(p, nil)
				if err != nil {
					t.Fatal(err)
				}
				seqs[i] = promptSequence(p, info, nil)
				fm.e.emulateF16KV, fm.e.emulateFlashAttn = true, true
				ours, err := fm.e.Logits(seqs[i])
				fm.e.emulateF16KV, fm.e.emulateFlashAttn = false, false
				if err != nil {
					t.Fatal(err)
				}
				refs[i] = ref
				refLast[i], oursLast[i] = ref[len(ref)-1], ours[len(ours)-1]
			}
			var change, mismatch, scale float64
			for j := range refLast[0] {
				dr := float64(refLast[0][j] - refLast[1][j])
				do := float64(oursLast[0][j] - oursLast[1][j])
				change = math.Max(change, math.Abs(dr))
				mismatch = math.Max(mismatch, math.Abs(do-dr))
				scale = math.Max(scale, math.Abs(float64(refLast[0][j])))
			}
			tol := 2 * emuTol(scale)
			t.Logf("moving the image changes the last logits by up to %.3g; the engines' changes differ by %.3g (tol %.3g)", change, mismatch, tol)
			if mismatch > tol {
				t.Fatalf("the engines see different changes: %g > %g", mismatch, tol)
			}
			if change < 10*tol {
				t.Fatalf("moving the image changes the logits by only %g: the test proves nothing", change)
			}
			// Inputs unlike llama.cpp's must be caught by the parity bound.
			wrong := seqs[1]
			switch {
			case info.MRoPE:
				wrong = simplePathMRoPE(seqs[1])
			case info.NonCausalImages:
				wrong.Embeds = []EmbedSpan{{Pos: seqs[1].Embeds[0].Pos, Rows: seqs[1].Embeds[0].Rows}}
			default:
				return
			}
			ours, err := fm.e.Logits(wrong)
			if err != nil {
				t.Fatal(err)
			}
			diff, s, _ := textRowsDiff(ours, refs[1])
			t.Logf("with llama.cpp-unlike image input the logits differ by %.3g (parity bound %.3g)", diff, familyTol(s))
			if diff <= familyTol(s) {
				t.Fatalf("faked image positions/mask went unnoticed: diff %g <= %g", diff, familyTol(s))
			}
		})
	}
}

// simplePathMRoPE gives an M-RoPE sequence the positions the plain Go binding would: every row,
// image rows included, at its index ({i, i, i, 0}).
func simplePathMRoPE(s Sequence) Sequence {
	out := s
	out.Positions4 = make([][4]int32, len(s.Tokens))
	for i := range out.Positions4 {
		out.Positions4[i] = [4]int32{int32(i), int32(i), int32(i), 0}
	}
	return out
}
