package llm

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// Several prompts decoded together give each request the completions it gets alone (same tokens,
// log-probs within logProbTol), also when the batch needs more than one wave (Parallel 4 < 6).
func TestGenerateBatchMatchesGenerate(t *testing.T) {
	for _, family := range []string{"llava", "qwen2vl"} {
		t.Run(family, func(t *testing.T) {
			opts := testOptions()
			opts.Parallel = 4
			m := loadTiny(t, family, opts)
			var reqs []Request
			for r, n := range []int{2, 3, 1} {
				p, err := m.ChatPrompt("You are player "+fmt.Sprint(r), "Describe your image.", testmodel.TestImage(40, 30, int64(20+r)))
				require.NoError(t, err)
				reqs = append(reqs, Request{Prompt: p, Sampling: Sampling{Temperature: 1, TopP: 0.95, N: n, MaxTokens: 10, Seed: uint64(100 + r)}})
			}
			got, err := m.GenerateBatch(bg, reqs)
			require.NoError(t, err)
			worst := 0.0
			for r, q := range reqs {
				want, err := m.Generate(bg, q.Prompt, q.Sampling)
				require.NoError(t, err)
				require.Len(t, got[r], q.Sampling.N)
				for j := range want {
					require.Equal(t, want[j].Tokens, got[r][j].Tokens, "request %d completion %d", r, j)
					require.Equal(t, want[j].Text, got[r][j].Text)
					for k := range want[j].LogProbs {
						worst = max(worst, math.Abs(float64(want[j].LogProbs[k]-got[r][j].LogProbs[k])))
					}
				}
			}
			t.Logf("batched prompts vs one at a time: max |Δ log-prob| = %.3g", worst)
			require.Less(t, worst, logProbTol)

			// Seed 0: requests get different random streams.
			same := Sampling{Temperature: 1, N: 1, MaxTokens: 10}
			two, err := m.GenerateBatch(bg, []Request{{reqs[0].Prompt, same}, {reqs[0].Prompt, same}})
			require.NoError(t, err)
			require.NotEqual(t, two[0][0].Tokens, two[1][0].Tokens)
		})
	}
}
