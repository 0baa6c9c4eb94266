package export

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/llm/testmodel"
	"github.com/vzlocal/vzlocal/lora"
)

// tinyModel writes a tiny test VLM into a fresh folder.
func tinyModel(t *testing.T, cfg testmodel.Config) testmodel.Files {
	t.Helper()
	files, err := testmodel.Write(t.TempDir(), cfg)
	require.NoError(t, err)
	return files
}

// randomAdapter makes an adapter for the model at textPath with every factor random and non-zero
// (a freshly initialised adapter has B = 0 and would change nothing), scaled so that the adapter
// moves the logits clearly: base weights have std 0.02, ΔW entries come out several times larger.
func randomAdapter(t *testing.T, textPath string, rank int, alpha float32, seed uint64) *lora.Adapter {
	t.Helper()
	cfg, err := lora.ReadConfig(textPath)
	require.NoError(t, err)
	a, err := lora.NewAdapter(cfg, lora.AdapterOptions{Rank: rank, Alpha: alpha, Seed: seed})
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(seed, 77))
	for _, p := range a.Pairs {
		for i := range p.B {
			p.B[i] = float32(r.NormFloat64() * 0.2)
		}
	}
	return a
}

// runFolder lays out a training run folder: adapter.gguf and config.json naming the base.
func runFolder(t *testing.T, a *lora.Adapter, files testmodel.Files) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, a.WriteGGUF(filepath.Join(dir, AdapterFile), lora.TypeF32))
	cfg, err := json.Marshal(map[string]string{"Model": files.Text, "MMProj": files.MMProj})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644))
	return dir
}

// chatPrompt is the raw chatml prompt the tests send, with the image where marker says.
func chatPrompt(marker string) string {
	return "<|im_start|>user\n" + marker + "\nWhat is in the image?<|im_end|>\n<|im_start|>assistant\n"
}

// engine loads a model in our own llama.cpp engine with one thread.
func engine(t *testing.T, text, mmproj string) *llm.Model {
	t.Helper()
	m, err := llm.Load(text, mmproj, llm.Options{Threads: 1, ContextSize: 512, Parallel: 1})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

// greedy generates n tokens greedily and returns them with their plain log-softmax log-probs.
func greedy(t *testing.T, m *llm.Model, p *llm.Prompt, n int) ([]int32, []float32) {
	t.Helper()
	ctx := context.Background()
	cs, err := m.Generate(ctx, p, llm.Sampling{Temperature: 0, MaxTokens: n, N: 1, Seed: 1})
	require.NoError(t, err)
	toks := cs[0].Tokens
	lps, err := m.Score(ctx, p, [][]int32{toks}, llm.Sampling{Temperature: 1})
	require.NoError(t, err)
	return toks, lps[0]
}

// maxAbsDiff is the largest |a[i]-b[i]| over the common length.
func maxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range min(len(a), len(b)) {
		m = math.Max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}
