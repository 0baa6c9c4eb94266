package lora

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestBackwardWeighedEqualsTwoPasses: one forward with the weights computed from its log-probs
// gives exactly (bit for bit) what LogProbs followed by Backward gives, with and without
// recomputation, and hands weigh the same log-probs LogProbs returns.
func TestBackwardWeighedEqualsTwoPasses(t *testing.T) {
	c := tinyConfig("qwen2")
	for _, recompute := range []bool{false, true} {
		e := NewCPU(RandomModel(c, 1), Options{Threads: 2, HeadChunk: 3, Recompute: recompute})
		if err := e.SetAdapter(randomAdapter(t, c, 4, 8, 2)); err != nil {
			t.Fatal(err)
		}
		b, _ := groupBatch(c, 3, 5)
		b.Temperature = 0.9
		// A weight that depends on the log-prob itself, as a policy-gradient loss's does.
		weigh := func(lp [][]float32) ([][]float32, error) {
			w := make([][]float32, len(lp))
			for s := range lp {
				w[s] = make([]float32, len(lp[s]))
				for i, l := range lp[s] {
					if b.Seqs[s].Mask[i] {
						w[s][i] = 0.1*l + float32(s+1)
					}
				}
			}
			return w, nil
		}
		lp, err := e.LogProbs(b)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := weigh(lp)
		want, err := e.Backward(b, w)
		if err != nil {
			t.Fatal(err)
		}
		var seen [][]float32
		got, err := e.BackwardWeighed(b, func(l [][]float32) ([][]float32, error) {
			seen = l
			return weigh(l)
		})
		if err != nil {
			t.Fatal(err)
		}
		for s := range lp {
			if !slices.Equal(seen[s], lp[s]) || !slices.Equal(got.LogProbs[s], want.LogProbs[s]) {
				t.Fatalf("recompute=%v: sequence %d: log-probs differ from LogProbs/Backward", recompute, s)
			}
		}
		if got.Loss != want.Loss || got.Tokens != want.Tokens {
			t.Fatalf("recompute=%v: loss %v tokens %d, want %v %d", recompute, got.Loss, got.Tokens, want.Loss, want.Tokens)
		}
		for i, p := range want.Grads.Pairs {
			q := got.Grads.Pairs[i]
			if !slices.Equal(p.A, q.A) || !slices.Equal(p.B, q.B) {
				t.Fatalf("recompute=%v: gradient of %s differs", recompute, p.Name)
			}
		}
	}
}

func TestBackwardWeighedErrors(t *testing.T) {
	c := tinyConfig("llama")
	e := NewCPU(RandomModel(c, 1), Options{Threads: 1})
	if err := e.SetAdapter(randomAdapter(t, c, 2, 4, 1)); err != nil {
		t.Fatal(err)
	}
	b, _ := groupBatch(c, 2, 3)
	boom := errors.New("boom")
	for _, tc := range []struct {
		name  string
		weigh func([][]float32) ([][]float32, error)
		want  string
	}{
		{"error passes through", func([][]float32) ([][]float32, error) { return nil, boom }, "boom"},
		{"no weights", func([][]float32) ([][]float32, error) { return nil, nil }, "returned no weights"},
		{"one sequence short", func(lp [][]float32) ([][]float32, error) { return lp[:1], nil }, "weights for 1 sequences"},
		{"one token short", func(lp [][]float32) ([][]float32, error) {
			w := slices.Clone(lp)
			w[1] = w[1][:len(w[1])-1]
			return w, nil
		}, "sequence 1:"},
	} {
		_, err := e.BackwardWeighed(b, tc.weigh)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
		if tc.name == "error passes through" && !errors.Is(err, boom) {
			t.Errorf("the weighing function's error is not wrapped through: %v", err)
		}
	}
	if _, err := e.BackwardWeighed(b, nil); err == nil {
		t.Error("nil weighing function accepted")
	}
}
