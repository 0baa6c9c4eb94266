package lora

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// groupBatch is a GRPO-like group: G completions of one prompt (the prompt includes an image span),
// the completion tokens scored, with mixed-sign per-token weights.
func groupBatch(c Config, g int, seed uint64) (*Batch, [][]float32) {
	r := rand.New(rand.NewPCG(seed, 3))
	prompt := make([]int32, 9)
	for i := range prompt {
		prompt[i] = int32(r.IntN(c.NVocab))
	}
	img := make([]float32, 3*c.NEmbd)
	for i := range img {
		img[i] = float32(r.NormFloat64())
	}
	b := &Batch{}
	var w [][]float32
	for s := 0; s < g; s++ {
		n := len(prompt) + 4 + 2*s
		seq := Sequence{Tokens: append([]int32(nil), prompt...), Embeds: []EmbedSpan{{Pos: 2, Rows: img}}, Mask: make([]bool, n)}
		ws := make([]float32, n)
		adv := float32(r.NormFloat64())
		for i := len(prompt); i < n; i++ {
			seq.Tokens = append(seq.Tokens, int32(r.IntN(c.NVocab)))
			seq.Mask[i] = true
			ws[i] = adv * float32(0.5+r.Float64()) // advantage times a per-token factor
		}
		b.Seqs = append(b.Seqs, seq)
		w = append(w, ws)
	}
	return b, w
}

// lossOf evaluates sum w_t logp_t with the forward only.
func lossOf(t *testing.T, e *CPU, b *Batch, w [][]float32) float64 {
	lp, err := e.LogProbs(b)
	if err != nil {
		t.Fatal(err)
	}
	var l float64
	for s := range lp {
		for i, v := range lp[s] {
			l += float64(w[s][i]) * float64(v)
		}
	}
	return l
}

// fdFailures checks every LoRA matrix with a central difference along a random unit direction:
// |fd - analytic| <= relTol*|analytic| + absTol. It returns the matrices that fail, and the worst
// relative error among those that pass.
func fdFailures(t *testing.T, e *CPU, ad *Adapter, b *Batch, w [][]float32, seed uint64) (fails []string, worst float64) {
	t.Helper()
	const h, relTol, absTol = 1e-2, 2e-2, 1e-4
	res, err := e.Backward(b, w)
	if err != nil {
		t.Fatal(err)
	}
	if l := lossOf(t, e, b, w); math.Abs(l-res.Loss) > 1e-6*math.Abs(l)+1e-6 {
		t.Fatalf("Backward loss %g != forward loss %g", res.Loss, l)
	}
	r := rand.New(rand.NewPCG(seed, 17))
	params, grads := ad.Params(), res.Grads.Params()
	for k, p := range params {
		dir := make([]float64, len(p))
		var norm float64
		for i := range dir {
			dir[i] = r.NormFloat64()
			norm += dir[i] * dir[i]
		}
		norm = math.Sqrt(norm)
		var an float64
		for i := range dir {
			dir[i] /= norm
			an += dir[i] * float64(grads[k][i])
		}
		orig := append([]float32(nil), p...)
		for i := range p {
			p[i] = orig[i] + float32(h*dir[i])
		}
		lp := lossOf(t, e, b, w)
		for i := range p {
			p[i] = orig[i] - float32(h*dir[i])
		}
		lm := lossOf(t, e, b, w)
		copy(p, orig)
		fd := (lp - lm) / (2 * h)
		pair := ad.Pairs[k/2]
		name := pair.Name + [2]string{".A", ".B"}[k%2]
		if math.Abs(fd-an) > relTol*math.Abs(an)+absTol {
			fails = append(fails, fmt.Sprintf("%s: fd %.6g analytic %.6g", name, fd, an))
		} else if math.Abs(an) > 100*absTol { // the relative error of tiny derivatives is float32 noise
			worst = math.Max(worst, math.Abs(fd-an)/math.Abs(an))
		}
	}
	return fails, worst
}

// TestGradientsFiniteDifference: every LoRA A and B of llama (NORM rope) and qwen2 (NEOX rope, biases)
// tiny models, a shared-prompt group with an image span and mixed-sign weights, with and without
// activation recomputation. Tolerance: |fd - analytic| <= 2e-2*|analytic| + 1e-4 at h = 1e-2 (float32
// forward).
func TestGradientsFiniteDifference(t *testing.T) {
	for _, arch := range []string{"llama", "qwen2"} {
		for _, v := range []struct {
			recompute bool
			block     int
		}{{false, attnBlock}, {true, attnBlock}, {false, 4}} {
			recompute := v.recompute
			t.Run(fmt.Sprintf("%s/recompute=%v/attn-block=%d", arch, recompute, v.block), func(t *testing.T) {
				withAttnBlock(t, v.block)
				c := tinyConfig(arch)
				e := NewCPU(RandomModel(c, 1), Options{Threads: 1, Recompute: recompute, HeadChunk: 5})
				b, w := groupBatch(c, 3, 4)
				checkGradientsFD(t, e, c, b, w)
			})
		}
	}
}

// checkGradientsFD installs a random adapter on e and reports every matrix whose gradient on
// (b, w) disagrees with finite differences.
func checkGradientsFD(t *testing.T, e *CPU, c Config, b *Batch, w [][]float32) {
	t.Helper()
	ad := randomAdapter(t, c, 3, 6, 2)
	if err := e.SetAdapter(ad); err != nil {
		t.Fatal(err)
	}
	fails, worst := fdFailures(t, e, ad, b, w, 5)
	t.Logf("%d matrices, worst relative error where |analytic| > 1e-2: %.3g", len(ad.Params()), worst)
	for _, f := range fails {
		t.Error(f)
	}
}

// checkFaultNoticed injects fault f into e and requires the finite-difference check to flag at
// least one matrix.
func checkFaultNoticed(t *testing.T, e *CPU, c Config, f fault, name string, b *Batch, w [][]float32) {
	t.Helper()
	ad := randomAdapter(t, c, 3, 6, 2)
	e.SetAdapter(ad)
	e.fault = f
	fails, _ := fdFailures(t, e, ad, b, w, 5)
	if len(fails) == 0 {
		t.Fatalf("gradient fault %s went unnoticed", name)
	}
	t.Logf("%s: %d of %d matrices flagged, e.g. %s", name, len(fails), len(ad.Params()), fails[0])
}

// TestGradientCheckCatchesFaults corrupts one gradient term at a time and requires the
// finite-difference check to report failures: the check above cannot pass vacuously.
func TestGradientCheckCatchesFaults(t *testing.T) {
	c := tinyConfig("llama")
	for _, f := range []struct {
		name string
		f    fault
	}{{"flip-dB", faultFlipDB}, {"drop-lora-dx", faultDropLoRADX}, {"drop-softmax", faultDropSoftmax}} {
		t.Run(f.name, func(t *testing.T) {
			e := NewCPU(RandomModel(c, 1), Options{Threads: 1})
			b, w := groupBatch(c, 2, 4)
			checkFaultNoticed(t, e, c, f.f, f.name, b, w)
		})
	}
}

// TestSharedPromptMatchesSeparate: the group computed with its prompt once must give the same
// log-probs, loss and gradients as each sequence run alone (prompt recomputed), summed.
func TestSharedPromptMatchesSeparate(t *testing.T) {
	withAttnBlock(t, 3) // several query blocks per segment
	c := tinyConfig("qwen2")
	e := NewCPU(RandomModel(c, 1), Options{Threads: 1})
	ad := randomAdapter(t, c, 3, 6, 2)
	e.SetAdapter(ad)
	b, w := groupBatch(c, 4, 8)
	group, err := e.Backward(b, w)
	if err != nil {
		t.Fatal(err)
	}
	sum := ad.ZeroLike()
	if err := sum.Add(randomAdapter(t, c, 2, 6, 1)); err == nil {
		t.Fatal("adding an adapter of another shape succeeded")
	}
	var loss float64
	rows := 0
	for s := range b.Seqs {
		one, err := e.Backward(&Batch{Seqs: b.Seqs[s : s+1]}, w[s:s+1])
		if err != nil {
			t.Fatal(err)
		}
		rows += one.Tokens
		loss += one.Loss
		for i, v := range one.LogProbs[0] {
			if d := math.Abs(float64(v - group.LogProbs[s][i])); d > 1e-5 {
				t.Fatalf("seq %d token %d: log-prob %g alone vs %g in group", s, i, v, group.LogProbs[s][i])
			}
		}
		if err := sum.Add(one.Grads); err != nil {
			t.Fatal(err)
		}
	}
	if math.Abs(loss-group.Loss) > 1e-5*math.Abs(loss) {
		t.Fatalf("loss %g alone vs %g in group", loss, group.Loss)
	}
	maxRel := gradDiff(group.Grads, sum)
	t.Logf("group rows %d vs %d separately; max relative gradient difference %.3g", group.Tokens, rows, maxRel)
	if maxRel > 1e-4 {
		t.Fatalf("shared-prompt gradients differ from separate runs: %g", maxRel)
	}
	if group.Tokens >= rows {
		t.Fatalf("group computed %d rows, separate %d: the prompt was not shared", group.Tokens, rows)
	}
}

// TestRecomputeSameGradients: recomputing activations in the backward gives the same gradients
// (the same operations on the same inputs), with a smaller memory estimate; a memory budget below
// the plain estimate switches recomputation on for that call.
func TestRecomputeSameGradients(t *testing.T) {
	c := tinyConfig("llama")
	m := RandomModel(c, 1)
	ad := randomAdapter(t, c, 3, 6, 2)
	b, w := groupBatch(c, 3, 4)
	var grads [][]float32
	var est []int64
	for _, o := range []Options{{}, {Recompute: true}, {MemoryBudget: 1}} {
		e := NewCPU(m, o)
		e.SetAdapter(ad)
		res, err := e.Backward(b, w)
		if err != nil {
			t.Fatal(err)
		}
		flat := []float32{}
		for _, p := range res.Grads.Params() {
			flat = append(flat, p...)
		}
		if grads != nil && !slicesEqual(flat, grads[0]) {
			t.Fatalf("options %+v: gradients differ from the plain backward", o)
		}
		grads = append(grads, flat)
		n, err := e.MemoryEstimate(b)
		if err != nil {
			t.Fatal(err)
		}
		est = append(est, n)
	}
	if est[1] >= est[0] {
		t.Fatalf("memory estimate with recomputation %d, without %d", est[1], est[0])
	}
	t.Logf("memory estimate: %d bytes plain, %d with recomputation", est[0], est[1])
}

// TestPositionsShiftInvariance: RoPE depends only on relative positions, so shifting every
// position by a constant (through Sequence.Positions) leaves the log-probs unchanged up to float32
// rounding of the angles; a wrong use of the position array would not.
func TestPositionsShiftInvariance(t *testing.T) {
	for _, arch := range []string{"llama", "qwen2"} {
		c := tinyConfig(arch)
		c.RopeBase = 100 // fast-turning frequencies make positions matter
		e := NewCPU(RandomModel(c, 1), Options{})
		b, _ := groupBatch(c, 1, 3)
		base, err := e.LogProbs(b)
		if err != nil {
			t.Fatal(err)
		}
		shifted := b.Seqs[0]
		shifted.Positions = make([]int32, len(shifted.Tokens))
		for i := range shifted.Positions {
			shifted.Positions[i] = int32(i + 7)
		}
		got, err := e.LogProbs(&Batch{Seqs: []Sequence{shifted}})
		if err != nil {
			t.Fatal(err)
		}
		scrambled := b.Seqs[0]
		scrambled.Positions = make([]int32, len(scrambled.Tokens))
		for i := range scrambled.Positions {
			scrambled.Positions[i] = int32((i * 5) % len(scrambled.Tokens))
		}
		other, _ := e.LogProbs(&Batch{Seqs: []Sequence{scrambled}})
		var d, dOther float64
		for i := range base[0] {
			d = math.Max(d, math.Abs(float64(base[0][i]-got[0][i])))
			dOther = math.Max(dOther, math.Abs(float64(base[0][i]-other[0][i])))
		}
		if d > 1e-4 {
			t.Fatalf("%s: shifting positions by 7 changed log-probs by %g", arch, d)
		}
		if dOther < 1e-3 {
			t.Fatalf("%s: scrambled positions changed log-probs by only %g: positions are not used", arch, dOther)
		}
	}
}

// withAttnBlock sets the attention query-block size for one test.
func withAttnBlock(t *testing.T, n int) {
	old := attnBlock
	attnBlock = n
	t.Cleanup(func() { attnBlock = old })
}

// TestAttentionBlocksSameResult: the blocked attention gives the same log-probs and gradients for
// any block size (blocks only skip keys that are masked anyway).
func TestAttentionBlocksSameResult(t *testing.T) {
	c := tinyConfig("llama")
	e := NewCPU(RandomModel(c, 1), Options{})
	ad := randomAdapter(t, c, 3, 6, 2)
	e.SetAdapter(ad)
	b, w := groupBatch(c, 3, 4)
	var ref *Result
	for _, blk := range []int{1000, 1, 2, 5} {
		withAttnBlock(t, blk)
		res, err := e.Backward(b, w)
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = res
			continue
		}
		if math.Abs(res.Loss-ref.Loss) > 1e-5*math.Abs(ref.Loss) {
			t.Fatalf("block %d: loss %g vs %g", blk, res.Loss, ref.Loss)
		}
		refParams := ref.Grads.Params()
		for k, g := range res.Grads.Params() {
			for i, v := range g {
				r := refParams[k][i]
				if math.Abs(float64(v-r)) > 1e-5*(1+math.Abs(float64(r))) {
					t.Fatalf("block %d: gradient %d[%d] %g vs %g", blk, k, i, v, r)
				}
			}
		}
	}
}
