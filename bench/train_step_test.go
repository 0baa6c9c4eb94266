package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/rs/zerolog"

	"github.com/vzlocal/vzlocal/llm/testmodel"
	"github.com/vzlocal/vzlocal/selfplay"
	"github.com/vzlocal/vzlocal/selfplay/train"
)

// BenchmarkTrainStep runs spy-game training steps on generated CLEVR pairs and reports where a
// step's time goes, as fractions of the step: rollout (llama.cpp), scoring (the gradient engine's
// log-prob passes outside the backward: the KL reference pass, since the CPU engine scores the
// policy inside its backward), backward, optimizer and adapter swap. Models: the tiny test VLM and a random
// model with Qwen2.5-0.5B's dimensions (qwen2: 896 wide, 24 layers, 14 heads, 2 KV heads, FFN 4864,
// 151936 tokens; Q8_0 for llama.cpp, dequantized to F32 by the gradient engine) with an InternVL-style
// projector. Each step: one game of 3 players, 1 clue round, 4 observer samples, 16 tokens per turn.
func BenchmarkTrainStep(b *testing.B) {
	for _, name := range []string{"tiny", "qwen2.5-0.5b-dims"} {
		b.Run(name, func(b *testing.B) {
			cfg := testmodel.Config{Family: "llava", Seed: 1}
			if name != "tiny" {
				cfg = testmodel.Config{Family: "internvl", Seed: 1, Embd: 896, Layers: 24, Heads: 14, KVHeads: 2,
					FFN: 4864, Vocab: 151936, WeightType: "q8_0"}
			}
			files, err := testmodel.Write(b.TempDir(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			var c struct {
				C train.Config `embed:""`
			}
			p, err := kong.New(&c)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := p.Parse([]string{"--model", files.Text, "--mmproj", files.MMProj, "--data", "clevr", "--data-n", "4",
				"--held-out", "0", "--games-per-step", "1", "--spy-players", "3", "--spy-rounds", "1",
				"--spy-observer-samples", "4", "--spy-clue-max-tokens", "16", "--spy-decision-max-tokens", "16",
				"--switch-rule", "cycle", "--checkpoint-every", "0"}); err != nil {
				b.Fatal(err)
			}
			c.C.Steps = 2 * max(b.N, 1)
			run, err := train.Open(c.C, b.TempDir(), false, zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			defer run.Close()
			var sum selfplay.StepMetrics
			run.OnStep = func(m selfplay.StepMetrics) {
				sum.RolloutSeconds += m.RolloutSeconds
				sum.ScoreSeconds += m.ScoreSeconds
				sum.TrainSeconds += m.TrainSeconds
				sum.OptimSeconds += m.OptimSeconds
				sum.SwapSeconds += m.SwapSeconds
			}
			b.ResetTimer()
			if err := run.Run(context.Background()); err != nil {
				b.Fatal(err)
			}
			total := sum.RolloutSeconds + sum.ScoreSeconds + sum.TrainSeconds + sum.OptimSeconds + sum.SwapSeconds
			for _, part := range []struct {
				name string
				secs float64
			}{{"rollout", sum.RolloutSeconds}, {"score", sum.ScoreSeconds}, {"backward", sum.TrainSeconds},
				{"optim", sum.OptimSeconds}, {"swap", sum.SwapSeconds}} {
				b.ReportMetric(part.secs/total, part.name+"_frac")
			}
			b.ReportMetric(total/float64(c.C.Steps), "s/step")
			fmt.Printf("%s: %d steps, %.2f s/step\n", name, c.C.Steps, total/float64(c.C.Steps))
		})
	}
}
