package lora

import (
	"math"
	"testing"
)

// TestTemperatureScoresTemperedDistribution: with Batch.Temperature T the log-probs are those of
// softmax(logits / T) (checked against the full logits), and the gradients stay exact (finite
// differences), so the trainer's log pi_theta matches what the rollout engine sampled from.
func TestTemperatureScoresTemperedDistribution(t *testing.T) {
	c := tinyConfig("llama")
	e := NewCPU(RandomModel(c, 1), Options{Threads: 1, HeadChunk: 5})
	ad := randomAdapter(t, c, 3, 6, 2)
	if err := e.SetAdapter(ad); err != nil {
		t.Fatal(err)
	}
	b, w := groupBatch(c, 2, 4)
	const temp = 0.7
	b.Temperature = temp
	lp, err := e.LogProbs(b)
	if err != nil {
		t.Fatal(err)
	}
	seq := b.Seqs[0]
	logits, err := e.Logits(seq)
	if err != nil {
		t.Fatal(err)
	}
	var worst float64
	for i := 1; i < len(seq.Tokens); i++ {
		if !seq.Mask[i] {
			continue
		}
		row := logits[i-1]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v)/temp)
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v)/temp - mx)
		}
		want := float64(row[seq.Tokens[i]])/temp - mx - math.Log(sum)
		worst = math.Max(worst, math.Abs(want-float64(lp[0][i])))
	}
	if worst > 1e-4 {
		t.Fatalf("tempered log-probs differ from log_softmax(logits/T) by %.3g (tolerance 1e-4)", worst)
	}
	plain := *b
	plain.Temperature = 1
	lp1, err := e.LogProbs(&plain)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(lp1[0][len(seq.Tokens)-1]-lp[0][len(seq.Tokens)-1])) < 1e-6 {
		t.Fatal("temperature had no effect on the log-probs")
	}
	fails, rel := fdFailures(t, e, ad, b, w, 5)
	t.Logf("finite differences at T=%.1f: worst relative error %.3g", temp, rel)
	for _, f := range fails {
		t.Error(f)
	}
	b.Temperature = -1
	if _, err := e.LogProbs(b); err == nil {
		t.Fatal("negative temperature accepted")
	}
}
