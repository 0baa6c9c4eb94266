package lora

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// Gradient checks for the architectures beyond llama/qwen2: qwen2vl (M-RoPE) and gemma3 (q/k and
// post norms, embedding scale, GELU-tanh FFN, sliding-window layers, non-causal image span).

// familyConfig is a tiny decoder of arch "qwen2vl", "qwen3" or "gemma3" with every feature switched on and
// strong enough to matter on 20-token sequences: fast-turning RoPE, M-RoPE sections over all three
// components, a 4-position window.
func familyConfig(arch string) Config {
	switch arch {
	case "qwen2vl":
		c := tinyConfig("qwen2")
		c.Arch, c.RopeBase = "qwen2vl", 100
		c.RopeSections = [4]int{1, 1, 2, 0} // 4 rotary pairs: t, h, w, w
		return c
	case "qwen3":
		c := tinyConfig("qwen3")
		c.HeadDim, c.NRot, c.RopeBase = 16, 16, 100 // head_dim > n_embd/n_head, as Qwen3's
		return c
	case "gemma3":
		c := tinyConfig("llama")
		c.Arch, c.Rope, c.NLayer, c.RopeBase, c.TiedOutput, c.QKNorm = "gemma3", RopeNeox, 6, 1000, true, true
		c.Gemma = &GemmaConfig{EmbedScale: float32(math.Sqrt(float64(c.NEmbd))), QueryScale: 0.3, SlidingWindow: 4, SWARopeBase: 100}
		return c
	}
	panic("familyConfig: " + arch)
}

// scaledRandomModel is RandomModel with gemma3's embeddings at Gemma's scale: the table is divided by
// EmbedScale, so scaled token rows are about unit size and the tied head's logits stay O(1) (as in
// real checkpoints; with N(0, 1) embeddings the logits are so sharp that float32 noise dominates the
// finite differences).
func scaledRandomModel(c Config) *Model {
	m := RandomModel(c, 1)
	if c.Gemma != nil {
		for i := range m.TokEmbd {
			m.TokEmbd[i] /= c.Gemma.EmbedScale
		}
	}
	return m
}

// familyBatch is groupBatch with the family's image handling: M-RoPE positions for the 3 image
// rows at index 2 (a 2-wide grid: (h, w) = (2, 2), (2, 3), (3, 2); text after it resumes at
// 2 + max(nx, ny) = 4), or a non-causal image span for gemma3.
func familyBatch(c Config, g int, seed uint64) (*Batch, [][]float32) {
	b, w := groupBatch(c, g, seed)
	for s := range b.Seqs {
		sq := &b.Seqs[s]
		if c.Gemma != nil {
			sq.Embeds[0].NonCausal = true
		}
		if !c.MRoPE() {
			continue
		}
		sq.Positions4 = make([][4]int32, len(sq.Tokens))
		for i := range sq.Positions4 {
			switch {
			case i < 2:
				sq.Positions4[i] = [4]int32{int32(i), int32(i), int32(i), 0}
			case i < 5:
				r := int32(i - 2)
				sq.Positions4[i] = [4]int32{2, 2 + r/2, 2 + r%2, 0}
			default:
				p := int32(i - 5 + 4)
				sq.Positions4[i] = [4]int32{p, p, p, 0}
			}
		}
	}
	return b, w
}

// TestFamilyGradientsFiniteDifference: every LoRA A and B of qwen2vl and gemma3 tiny models on a
// shared-prompt group with an image span and mixed-sign weights, with and without recomputation,
// and with query blocks of 4 rows (so the non-causal span crosses a block boundary). Tolerance as
// TestGradientsFiniteDifference: |fd - analytic| <= 2e-2*|analytic| + 1e-4 at h = 1e-2.
func TestFamilyGradientsFiniteDifference(t *testing.T) {
	for _, arch := range []string{"qwen2vl", "qwen3", "gemma3"} {
		for _, v := range []struct {
			recompute bool
			block     int
		}{{false, attnBlock}, {true, attnBlock}, {false, 4}} {
			t.Run(fmt.Sprintf("%s/recompute=%v/attn-block=%d", arch, v.recompute, v.block), func(t *testing.T) {
				withAttnBlock(t, v.block)
				c := familyConfig(arch)
				e := NewCPU(scaledRandomModel(c), Options{Threads: 1, Recompute: v.recompute, HeadChunk: 5})
				b, w := familyBatch(c, 3, 4)
				checkGradientsFD(t, e, c, b, w)
			})
		}
	}
}

// TestFamilyGradientCheckCatchesFaults: the check above notices a wrong backward through gemma3's
// own layers (the q/k norms skipped, SiLU's derivative in place of GELU's).
func TestFamilyGradientCheckCatchesFaults(t *testing.T) {
	c := familyConfig("gemma3")
	for _, f := range []struct {
		name string
		f    fault
	}{{"skip-qk-norm", faultSkipQKNorm}, {"gelu-as-silu", faultGeluAsSilu}} {
		t.Run(f.name, func(t *testing.T) {
			e := NewCPU(scaledRandomModel(c), Options{Threads: 1})
			b, w := familyBatch(c, 2, 4)
			checkFaultNoticed(t, e, c, f.f, f.name, b, w)
		})
	}
}

// TestFamilySharedPromptAndBlocks: for both architectures the group computed with its prompt once
// gives the log-probs and gradients of each sequence run alone, for any query-block size.
func TestFamilySharedPromptAndBlocks(t *testing.T) {
	for _, arch := range []string{"qwen2vl", "gemma3"} {
		t.Run(arch, func(t *testing.T) {
			c := familyConfig(arch)
			e := NewCPU(scaledRandomModel(c), Options{Threads: 1})
			ad := randomAdapter(t, c, 3, 6, 2)
			e.SetAdapter(ad)
			b, w := familyBatch(c, 3, 8)
			var ref *Result
			for _, blk := range []int{1000, 1, 3} {
				withAttnBlock(t, blk)
				res, err := e.Backward(b, w)
				if err != nil {
					t.Fatal(err)
				}
				if ref == nil {
					ref = res
				} else if d := gradDiff(res.Grads, ref.Grads); d > 1e-4 {
					t.Fatalf("attention block %d: gradients differ from one block by %g", blk, d)
				}
			}
			sum := ad.ZeroLike()
			for s := range b.Seqs {
				one, err := e.Backward(&Batch{Seqs: b.Seqs[s : s+1]}, w[s:s+1])
				if err != nil {
					t.Fatal(err)
				}
				for i, v := range one.LogProbs[0] {
					if d := math.Abs(float64(v - ref.LogProbs[s][i])); d > 1e-5 {
						t.Fatalf("seq %d token %d: log-prob %g alone vs %g in group", s, i, v, ref.LogProbs[s][i])
					}
				}
				sum.Add(one.Grads)
			}
			if d := gradDiff(ref.Grads, sum); d > 1e-4 {
				t.Fatalf("shared-prompt gradients differ from separate runs by %g", d)
			}
			if ref.Tokens >= len(b.Seqs[0].Tokens)+len(b.Seqs[1].Tokens) {
				t.Fatalf("the prompt was not shared (%d rows)", ref.Tokens)
			}
		})
	}
}

// gradDiff is the largest relative L2 difference over the adapter's matrices.
func gradDiff(a, b *Adapter) float64 {
	var worst float64
	bp := b.Params()
	for k, g := range a.Params() {
		var dn, nn float64
		for i, v := range g {
			d := float64(v - bp[k][i])
			dn += d * d
			nn += float64(v) * float64(v)
		}
		if nn > 0 {
			worst = math.Max(worst, math.Sqrt(dn/nn))
		}
	}
	return worst
}

// TestFamilyFeaturesMatter: each feature changes the log-probs (so the checks above exercise it):
// the M-RoPE h/w components of the image rows, the non-causal span, the sliding window.
func TestFamilyFeaturesMatter(t *testing.T) {
	lp := func(c Config, b *Batch) []float32 {
		e := NewCPU(scaledRandomModel(c), Options{})
		out, err := e.LogProbs(b)
		if err != nil {
			t.Fatal(err)
		}
		return out[0]
	}
	differ := func(name string, a, b []float32) {
		var d float64
		for i := range a {
			d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		}
		t.Logf("%s changes log-probs by up to %.3g", name, d)
		if d < 1e-3 {
			t.Errorf("%s changes log-probs by only %g", name, d)
		}
	}
	q := familyConfig("qwen2vl")
	b, _ := familyBatch(q, 1, 3)
	flat := b.Seqs[0]
	flat.Positions4 = append([][4]int32(nil), flat.Positions4...)
	for i := 2; i < 5; i++ {
		flat.Positions4[i] = [4]int32{2, 2, 2, 0}
	}
	differ("M-RoPE image h/w positions", lp(q, b), lp(q, &Batch{Seqs: []Sequence{flat}}))

	g := familyConfig("gemma3")
	b, _ = familyBatch(g, 1, 3)
	causal := b.Seqs[0]
	causal.Embeds = []EmbedSpan{{Pos: causal.Embeds[0].Pos, Rows: causal.Embeds[0].Rows}}
	differ("gemma3 non-causal image span", lp(g, b), lp(g, &Batch{Seqs: []Sequence{causal}}))
	noWindow := g
	gm := *g.Gemma
	gm.SlidingWindow = 0
	noWindow.Gemma = &gm
	differ("gemma3 sliding window", lp(g, b), lp(noWindow, b))
}

// TestMRoPEBadInput: 4-component positions are checked against the model and the sequence.
func TestMRoPEBadInput(t *testing.T) {
	q := familyConfig("qwen2vl")
	e := NewCPU(RandomModel(q, 1), Options{})
	b, _ := familyBatch(q, 1, 3)
	for _, tc := range []struct {
		name string
		edit func(s *Sequence)
		want string
	}{
		{"image without Positions4", func(s *Sequence) { s.Positions4 = nil }, "needs Positions4"},
		{"both position kinds", func(s *Sequence) { s.Positions = make([]int32, len(s.Tokens)) }, "both Positions and Positions4"},
		{"short Positions4", func(s *Sequence) { s.Positions4 = s.Positions4[1:] }, "M-RoPE positions for"},
	} {
		s := b.Seqs[0]
		tc.edit(&s)
		if _, err := e.LogProbs(&Batch{Seqs: []Sequence{s}}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
	l := NewCPU(RandomModel(tinyConfig("llama"), 1), Options{})
	s := b.Seqs[0]
	if _, err := l.LogProbs(&Batch{Seqs: []Sequence{s}}); err == nil || !strings.Contains(err.Error(), "does not use M-RoPE") {
		t.Errorf("Positions4 on a llama model: error %v", err)
	}
	// Text-only sequences of an M-RoPE model need no Positions4: {p, p, p, 0} is implied.
	text := Sequence{Tokens: []int32{1, 2, 3, 4}}
	exp := text
	exp.Positions4 = [][4]int32{{0, 0, 0, 0}, {1, 1, 1, 0}, {2, 2, 2, 0}, {3, 3, 3, 0}}
	a, err := e.LogProbs(&Batch{Seqs: []Sequence{text}})
	if err != nil {
		t.Fatal(err)
	}
	bb, _ := e.LogProbs(&Batch{Seqs: []Sequence{exp}})
	for i := range a[0] {
		if a[0][i] != bb[0][i] {
			t.Fatalf("implied text positions differ from explicit ones at %d", i)
		}
	}
}

// TestNonCausalSpanNotSplit: two sequences whose images share their first rows must not share a
// prefix that ends inside the (non-causal) span: each span row sees the whole span, which differs.
// The group's log-probs equal the separate runs'; they would not if the prefix split the span.
func TestNonCausalSpanNotSplit(t *testing.T) {
	c := familyConfig("gemma3")
	e := NewCPU(scaledRandomModel(c), Options{Threads: 1})
	b, _ := familyBatch(c, 2, 5)
	other := append([]float32(nil), b.Seqs[1].Embeds[0].Rows...)
	for i := 2 * c.NEmbd; i < len(other); i++ { // the last of the 3 rows differs
		other[i] = -other[i]
	}
	b.Seqs[1].Embeds = []EmbedSpan{{Pos: 2, Rows: other, NonCausal: true}}
	group, err := e.LogProbs(b)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := pack(b, c, nil)
	if pk.prefix != 2 {
		t.Fatalf("shared prefix %d rows, want 2 (the span starts at 2)", pk.prefix)
	}
	for s := range b.Seqs {
		one, err := e.LogProbs(&Batch{Seqs: b.Seqs[s : s+1]})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range one[0] {
			if d := math.Abs(float64(v - group[s][i])); d > 1e-5 {
				t.Fatalf("seq %d token %d: log-prob %g alone vs %g in group", s, i, v, group[s][i])
			}
		}
	}
}
