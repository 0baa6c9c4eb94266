package llm

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// Rows sampled and scored on several goroutines (rowSampler) give exactly what the serial order
// gives: the same tokens, the same log-probs bit for bit. The vocabulary is above
// minParallelVocab, so the parallel path really runs (four workers, whatever the machine has).
func TestRowSamplerMatchesSerial(t *testing.T) {
	f, err := testmodel.Write(filepath.Join(t.TempDir(), "wide"), testmodel.Config{
		Family: "llava", Seed: 3, Vocab: 2 * minParallelVocab, NoMMProj: true})
	require.NoError(t, err)
	m, err := Load(f.Text, "", testOptions())
	require.NoError(t, err)
	defer m.Close()
	require.GreaterOrEqual(t, m.Info().NVocab, minParallelVocab)
	text, err := m.FormatChat([]Message{{"user", "Describe the picture."}})
	require.NoError(t, err)
	p, err := m.Tokenize(text)
	require.NoError(t, err)

	run := func(workers int) ([]Completion, [][]float32) {
		m.rows = rowSampler{workers: workers}
		for _, s := range []Sampling{{Temperature: 1, N: 6, MaxTokens: 12, Seed: 5}, {Temperature: 0.7, TopP: 0.9, N: 3, MaxTokens: 12, Seed: 6}} {
			cs, err := m.Generate(bg, p, s)
			require.NoError(t, err)
			seqs := make([][]int32, len(cs))
			for i, c := range cs {
				seqs[i] = c.Tokens
			}
			scores, err := m.Score(bg, p, seqs, s)
			require.NoError(t, err)
			if s.TopP == 0 {
				return cs, scores // the top-p draw below only has to run without a race
			}
		}
		panic("unreachable")
	}
	serialC, serialS := run(1)
	parC, parS := run(4)
	require.Equal(t, serialC, parC)
	require.Equal(t, serialS, parS)
	require.NotEqual(t, parC[0].Tokens, parC[1].Tokens, "completions draw from their own streams")
	for i, c := range parC {
		require.Equal(t, c.LogProbs, parS[i], "Score gives back what Generate recorded (completion %d)", i)
	}
}
