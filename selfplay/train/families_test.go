package train

import (
	"testing"

	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// TestVLMFamiliesTrainAStep runs two GRPO steps of the toy digit game on the tiny qwen2vl (M-RoPE
// image positions), gemma3 (non-causal image rows, sliding-window layers), smolvlm (five image
// chunks per image) and internvl models with an image in every prompt. Besides training (non-zero gradient, no skipped step), the first step compares
// the gradient engine's completion log-probs under the starting adapter (B = 0: the base model)
// with the behaviour log-probs llama.cpp sampled with. Measured p99 of |log ratio|: 0.005 with the
// right input (llama.cpp's f16 flash attention), 0.027 with every qwen2vl image row at the same
// (t, h, w), 0.137 with gemma3's image span causal; the bound is 0.01.
func TestVLMFamiliesTrainAStep(t *testing.T) {
	for _, family := range []string{"qwen2vl", "gemma3", "smolvlm", "internvl"} {
		t.Run(family, func(t *testing.T) {
			files, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: family, Seed: 1, WeightStd: 0.1})
			if err != nil {
				t.Fatal(err)
			}
			model, engine := openTiny(t, files)
			info := model.Info()
			if family == "qwen2vl" && !info.MRoPE || family == "gemma3" && !info.NonCausalImages {
				t.Fatalf("%s: info %+v lacks the feature under test", family, info)
			}
			cfg, game := digitRun(t, 2, 4, 4)
			ms, _ := trainDigit(t, model, engine, cfg, game)
			for _, m := range ms {
				// A step whose rewards are all equal has zero advantages, hence a zero gradient.
				if m.Skipped || m.TrainTokPerSec == 0 || (m.GradNorm == 0) != (m.RewardStd == 0) {
					t.Fatalf("step %d did not train: %+v", m.Step, m)
				}
			}
			m0 := ms[0]
			t.Logf("step 1: |log ratio| mean %.3g, p99 %.3g; grad norm %.3g", m0.LogRatioMean, m0.LogRatioP99, m0.GradNorm)
			if m0.LogRatioP99 > 0.01 {
				t.Fatalf("the engine's log-probs differ from the rollout's by %g (p99): positions or mask differ from llama.cpp's", m0.LogRatioP99)
			}
		})
	}
}
