package cuda

import (
	"fmt"
	"math"
	"testing"

	"github.com/vzlocal/vzlocal/lora"
)

// TestParityMatrix runs the CPU/CUDA comparison over small random models that each switch one
// feature, so that a failing GPU run names the feature at fault (rope type, biases, tied head,
// grouped vs plain attention, partial rotary dims, rope_freqs, linear rope scaling, shared prompt
// vs single sequence, temperature, a subset of LoRA targets). F32 mode, tight tolerances (see
// parity_test.go); the BF16 rows only log their errors.
func TestParityMatrix(t *testing.T) {
	needGPU(t)
	type variant struct {
		name    string
		cfg     func() lora.Config
		targets []string
		single  bool
		temp    float32
	}
	base := func(arch string) func() lora.Config {
		return func() lora.Config {
			c := tinyConfig(arch)
			c.NEmbd, c.NHead, c.HeadDim, c.NRot, c.NFF = 64, 4, 16, 16, 96
			return c
		}
	}
	with := func(arch string, f func(*lora.Config)) func() lora.Config {
		return func() lora.Config { c := base(arch)(); f(&c); return c }
	}
	variants := []variant{
		{name: "llama", cfg: base("llama")},
		{name: "qwen2-bias-neox", cfg: base("qwen2")},
		{name: "llama-single-seq", cfg: base("llama"), single: true},
		{name: "llama-temperature", cfg: base("llama"), temp: 0.7},
		{name: "llama-mha", cfg: with("llama", func(c *lora.Config) { c.NHeadKV = c.NHead })},
		{name: "llama-mqa", cfg: with("llama", func(c *lora.Config) { c.NHeadKV = 1 })},
		{name: "llama-tied", cfg: with("llama", func(c *lora.Config) { c.TiedOutput = true })},
		{name: "llama-partial-rotary", cfg: with("llama", func(c *lora.Config) { c.NRot = 8 })},
		{name: "qwen2-partial-rotary", cfg: with("qwen2", func(c *lora.Config) { c.NRot = 8 })},
		{name: "llama-rope-freqs", cfg: with("llama", func(c *lora.Config) { c.RopeFreqs = []float32{1, 1, 1.5, 2, 3, 5, 8, 8} })},
		{name: "llama-rope-linear", cfg: with("llama", func(c *lora.Config) { c.RopeScale = 0.25 })},
		{name: "qwen2-attn-only-lora", cfg: base("qwen2"), targets: []string{"attn_q", "attn_v"}},
		{name: "qwen2-ffn-only-lora", cfg: base("qwen2"), targets: []string{"ffn_gate", "ffn_up", "ffn_down"}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			c := v.cfg()
			m := lora.RandomModel(c, 5)
			ad, err := lora.NewAdapter(c, lora.AdapterOptions{Rank: 4, Alpha: 8, Seed: 2, Targets: v.targets})
			if err != nil {
				t.Fatal(err)
			}
			r := randomAdapter(t, c, 4, 2)
			for _, p := range ad.Pairs { // non-zero B from the helper's adapter
				copy(p.B, r.Lookup(p.Layer, p.Target).B)
			}
			g := 3
			if v.single {
				g = 1
			}
			b, w := groupBatch(c, g, 9, 5, 21)
			b.Temperature = v.temp
			ref := cpuBackward(t, m, ad, b, w, 2)
			for _, prec := range []Precision{F32, BF16} {
				e := openEngine(t, m, prec)
				if err := e.SetAdapter(ad); err != nil {
					t.Fatal(err)
				}
				res, err := e.Backward(b, w)
				if err != nil {
					t.Fatal(err)
				}
				d := diffResults(res, ref)
				t.Logf("%s: %s", prec, d)
				if prec == F32 {
					tol := tolerances["tiny"][F32]
					if !(d.lpMax <= tol.lpMaxAbs) || !(d.lossRel <= tol.loss) || !(d.grad <= tol.grad) {
						t.Errorf("F32 parity fails (tolerances: log-probs %.3g, loss %.3g, gradients %.3g)", tol.lpMaxAbs, tol.loss, tol.grad)
					}
				}
				e.Close()
			}
		})
	}
}

// resultDiff is how far one engine's Backward result is from another's.
type resultDiff struct {
	lpRel, lpMax, lossRel, grad float64
	gradName                    string // the worst gradient tensor
}

func (d resultDiff) String() string {
	return fmt.Sprintf("log-probs rel %.3g max %.3g; loss rel %.3g; worst gradient rel %.3g (%s)",
		d.lpRel, d.lpMax, d.lossRel, d.grad, d.gradName)
}

func diffResults(res, ref *lora.Result) resultDiff {
	var d resultDiff
	d.lpRel, d.lpMax = relErr(flat2(res.LogProbs), flat2(ref.LogProbs))
	d.lossRel = math.Abs(res.Loss-ref.Loss) / math.Max(math.Abs(ref.Loss), 1e-12)
	for i, p := range ref.Grads.Pairs {
		q := res.Grads.Pairs[i]
		for _, ab := range [][3]any{{"A", q.A, p.A}, {"B", q.B, p.B}} {
			rel, _ := relErr(ab[1].([]float32), ab[2].([]float32))
			if !(rel <= d.grad) {
				d.grad, d.gradName = rel, p.Name+"."+ab[0].(string)
			}
		}
	}
	return d
}
