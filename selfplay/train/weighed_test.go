package train

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/vzlocal/vzlocal/llm/testmodel"
	"github.com/vzlocal/vzlocal/lora"
)

// twoPassEngine hides lora.CPU's BackwardWeighed, so the trainer scores with LogProbs and then runs
// Backward (the path the CUDA engine takes).
type twoPassEngine struct{ lora.Engine }

// TestOneForwardTrainingEqualsTwoPasses: scoring and differentiating in one forward per group
// (lora.CPU.BackwardWeighed) trains exactly (bit for bit) as scoring first and running the backward
// after, across the loss settings that decide whether a sequence's weights could depend on other
// sequences: KL on or off, truncated or masked importance sampling at token or sequence level
// (the first update with MIS takes the two-pass path), several updates per batch, each loss
// aggregation.
func TestOneForwardTrainingEqualsTwoPasses(t *testing.T) {
	files, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "llava", Seed: 1, WeightStd: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name           string
		is, level, agg string
		kl             float64
		updates        int
	}{
		{"kl+tis-token", "tis", "token", "seq-mean-token-mean", 0.04, 1},
		{"mis-token, 2 updates", "mis", "token", "token-mean", 0, 2},
		{"tis-sequence+kl, 2 updates", "tis", "sequence", "seq-mean-token-sum-norm", 0.04, 2},
		{"mis-sequence", "mis", "sequence", "seq-mean-token-mean", 0.04, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var adapters []*lora.Adapter
			var losses []float64
			for _, twoPass := range []bool{false, true} {
				model, cpu := openTiny(t, files)
				var eng lora.Engine = cpu
				if twoPass {
					eng = twoPassEngine{cpu}
				} else if _, ok := eng.(weighedEngine); !ok {
					t.Fatal("the CPU engine does not offer the one-forward path")
				}
				cfg, game := digitRun(t, 2, 4, 4)
				cfg.Loss.IS, cfg.Loss.ISLevel, cfg.Loss.LossAgg = tc.is, tc.level, tc.agg
				cfg.Loss.KLBeta, cfg.Loss.UpdatesPerBatch = tc.kl, tc.updates
				ms, run := trainDigit(t, model, eng, cfg, game)
				for _, m := range ms {
					if m.Skipped || m.GradNorm == 0 {
						t.Fatalf("step %d did not train: %+v", m.Step, m)
					}
					losses = append(losses, m.Loss, m.KL, m.GradNorm)
				}
				a, err := lora.ReadAdapterGGUF(filepath.Join(run, AdapterFile), cpu.Config())
				if err != nil {
					t.Fatal(err)
				}
				adapters = append(adapters, a)
			}
			n := len(losses) / 2
			if !slices.Equal(losses[:n], losses[n:]) {
				t.Fatalf("loss, KL, gradient norm per step: one forward %v, two passes %v", losses[:n], losses[n:])
			}
			pa, pb := adapters[0].Params(), adapters[1].Params()
			for i := range pa {
				if !slices.Equal(pa[i], pb[i]) {
					t.Fatalf("adapter matrix %d differs between the one-forward and the two-pass training", i)
				}
			}
		})
	}
}
