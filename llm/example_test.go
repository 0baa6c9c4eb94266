package llm_test

import (
	"context"
	"fmt"
	"os"

	"github.com/vzlocal/vzlocal/llm"
)

// One training step's rollouts: G completions of one image prompt, their behaviour log-probs, the
// reference log-probs of the base model, then the next adapter.
func Example() {
	m, err := llm.Load("model.gguf", "mmproj.gguf", llm.Options{Parallel: 8})
	if err != nil {
		fmt.Println(err) // e.g. mmproj mmproj.gguf: projector output width 4096 ... does not fit ...
		return
	}
	defer m.Close()
	image, _ := os.ReadFile("pair-0-a.png")
	p, err := m.ChatPrompt("You are playing Who is the Spy.", "Describe your image in one sentence.", image)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	cs, _ := m.Generate(ctx, p, llm.Sampling{Temperature: 1, N: 8, MaxTokens: 128, Seed: 1})
	seqs := make([][]int32, len(cs))
	for i, c := range cs {
		seqs[i] = c.Tokens // c.LogProbs: behaviour log-probs; p.Tokens/p.Images: the exact input
	}
	_ = m.SetAdapter(nil, 0)
	ref, _ := m.Score(ctx, p, seqs, llm.Sampling{Temperature: 1}) // base model log-probs (KL)
	_ = ref
	a, _ := m.SwapAdapter("adapter-step-1.gguf") // or a.Update(name, values) in place
	_ = a
}
