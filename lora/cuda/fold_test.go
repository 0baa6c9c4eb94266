package cuda

import (
	"slices"
	"testing"

	"github.com/vzlocal/vzlocal/lora"
)

// TestFoldedLoRA: in bf16 mode the adapter's products run inside the base GEMMs (csrc/fold.cu).
// Against the CPU reference within the tiny model's BF16 tolerances: a rank-8 adapter, then a
// rank-16 one (the matrices are laid out again for the wider rank), then none (the base alone
// over the widened layout). The folded engine must differ from the unfolded one
// (VZLOCAL_CUDA_FOLD=0), which proves the folded path ran, and hold exactly the layout's padding
// in extra weight memory.
func TestFoldedLoRA(t *testing.T) {
	needGPU(t)
	m := tinyModel(t)
	b, w := groupBatch(m.Cfg, 3, 12, 5, 11)
	tol := tolerances["tiny"][BF16]
	ad8, ad16 := randomAdapter(t, m.Cfg, 8, 7), randomAdapter(t, m.Cfg, 16, 8)
	var plain *lora.Result
	var plainWeights int64
	t.Run("unfolded", func(t *testing.T) {
		t.Setenv("VZLOCAL_CUDA_FOLD", "0")
		var mem Memory
		plain, mem, _ = backwardOn(t, m, Options{Precision: BF16}, ad8, b, w)
		plainWeights = mem.Weights
	})
	e := openEngine(t, m, BF16)
	check := func(what string, ad *lora.Adapter) *lora.Result {
		t.Helper()
		if err := e.SetAdapter(ad); err != nil {
			t.Fatal(err)
		}
		res, err := e.Backward(b, w)
		if err != nil {
			t.Fatal(err)
		}
		d := diffResults(res, cpuBackward(t, m, ad, b, w, 2))
		t.Logf("%s vs CPU: %s", what, d)
		if !(d.lpRel <= tol.lpRel) || !(d.lossRel <= tol.loss) || !(d.grad <= tol.grad) {
			t.Errorf("%s: out of the BF16 tolerances (log-probs rel %.3g, loss %.3g, gradients %.3g)", what, tol.lpRel, tol.loss, tol.grad)
		}
		return res
	}
	folded := check("rank 8", ad8)
	if slices.Equal(flat2(folded.LogProbs), flat2(plain.LogProbs)) {
		t.Error("folded and unfolded log-probs are identical: the folded path did not run")
	}
	// Padding: every target matrix gains rp rows and rp columns (rp = 8 for rank 8).
	var pad int64
	for _, tg := range lora.Targets {
		in, out, _ := m.Cfg.LinearShape(tg)
		pad += int64(m.Cfg.NLayer) * 2 * (int64(out+8)*int64(in+8) - int64(out)*int64(in))
	}
	if got := e.Memory().Weights - plainWeights; got != pad {
		t.Errorf("folded layout holds %d more weight bytes than the plain one, want %d", got, pad)
	}
	check("rank 16 (laid out again)", ad16)
	if err := e.SetAdapter(nil); err != nil {
		t.Fatal(err)
	}
	got, err := e.LogProbs(b)
	if err != nil {
		t.Fatal(err)
	}
	cpu := lora.NewCPU(m, lora.Options{Threads: 2})
	want, err := cpu.LogProbs(b)
	if err != nil {
		t.Fatal(err)
	}
	if rel, mx := relErr(flat2(got), flat2(want)); !(rel <= tol.lpRel) || !(mx <= tol.lpMaxAbs) {
		t.Errorf("no adapter over the folded layout: log-probs rel %.3g max %.3g from the CPU's base model", rel, mx)
	}
}
