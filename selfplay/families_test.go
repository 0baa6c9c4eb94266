package selfplay

import (
	"testing"

	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// TestSpyGameEveryFamily plays a whole spy game with the tiny model of every supported VLM family
// through llama.cpp: each family's image chunks (M-RoPE grids, non-causal spans, tiles, begin/end
// tokens) reach the prompt, and the game is played by the rules.
func TestSpyGameEveryFamily(t *testing.T) {
	rows := map[string]int{"llava": 16, "qwen2vl": 0, "gemma3": 4, "smolvlm": 20, "internvl": 4}
	pairs := spyTestPairs(t, 1)
	for _, family := range testmodel.Families {
		t.Run(family, func(t *testing.T) {
			files, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: family, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			pol, err := OpenLlamaPolicy(files.Text, files.MMProj, llm.Options{Threads: 1, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer pol.Close()
			e := spyTestEngine(t, func(s *SpySettings) {
				s.Players, s.Rounds, s.ObserverSamples = 3, 1, 2
				s.Clue.MaxTokens, s.Decide.MaxTokens = 8, 8
			})
			g := playScored(t, e, pol, pairs, 0)[0]
			checkSpyRules(t, g)
			for _, s := range g.Samples {
				total := 0
				for _, sp := range s.ImageSpans {
					total += sp.Rows
				}
				if total == 0 || (rows[family] > 0 && total != rows[family]) {
					t.Fatalf("%s sample has %d image rows in %d spans, want %d", family, total, len(s.ImageSpans), rows[family])
				}
				if len(s.Tokens) == 0 || len(s.Tokens) != len(s.LogProbs) {
					t.Fatalf("%s sample without token ids or log-probs", family)
				}
			}
		})
	}
}
