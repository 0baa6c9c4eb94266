package export

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/vzlocal/vzlocal/internal/ggmlquant"

	"github.com/stretchr/testify/require"

	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/llm/testmodel"
	"github.com/vzlocal/vzlocal/lora"
)

// scoreAll scores a fixed completion under m (optionally with an adapter at scale 1).
func scoreAll(t *testing.T, m *llm.Model, p *llm.Prompt, toks []int32) []float32 {
	t.Helper()
	lps, err := m.Score(context.Background(), p, [][]int32{toks}, llm.Sampling{Temperature: 1})
	require.NoError(t, err)
	return lps[0]
}

// TestMergedMatchesAdapter folds a random adapter into tiny bases of three weight types and checks
// in llama.cpp that the merged model scores a completion as base + adapter does. Tolerances (max
// per-token log-prob difference): F32 fold 1e-4 (summation order only); F16 1e-2, Q8_0 2e-2 and
// Q4_K 1e-1 (the rounding of W+ΔW; measured 2.9e-3, 8.5e-3 and 5.8e-2). The adapter itself must move the log-probs by at least 20 times the
// merge error, or the comparison would prove nothing.
func TestMergedMatchesAdapter(t *testing.T) {
	img := testmodel.TestImage(32, 24, 5)
	for _, tc := range []struct {
		name, weights, quant string
		embd                 int // q4_K needs rows of 256 values
		wantType             uint32
		tol                  float64
	}{
		{"f32-keep", "f32", QuantKeep, 0, ggmlquant.TypeF32, 1e-4},
		{"q8_0-keep", "q8_0", QuantKeep, 0, ggmlquant.TypeQ8_0, 2e-2},
		{"q8_0-to-f16", "q8_0", "f16", 0, ggmlquant.TypeF16, 1e-2},
		{"f32-to-q4_K", "f32", "q4_K", 256, ggmlquant.TypeQ4_K, 1e-1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := tinyModel(t, testmodel.Config{Family: "llava", Seed: 2, WeightType: tc.weights, Embd: tc.embd, FFN: tc.embd})
			a := randomAdapter(t, files.Text, 4, 8, 11)
			dir := t.TempDir()
			adapterPath := filepath.Join(dir, "adapter.gguf")
			require.NoError(t, a.WriteGGUF(adapterPath, lora.TypeF32))
			merged := filepath.Join(dir, "merged.gguf")
			st, err := WriteMerged(context.Background(), files.Text, merged, FromLoRA(a), tc.quant)
			require.NoError(t, err)
			require.Equal(t, len(a.Pairs), st.Folded)

			// Every KV and every untouched tensor is copied; folded ones have the asked type.
			base, err := readGGUF(files.Text)
			require.NoError(t, err)
			out, err := readGGUF(merged)
			require.NoError(t, err)
			if tc.quant == QuantKeep {
				require.Equal(t, base.KVs, out.KVs)
			} else {
				// Every KV is copied except general.file_type, which now names the new type.
				require.Len(t, out.KVs, len(base.KVs))
				for i, kv := range base.KVs {
					if kv.Key != "general.file_type" {
						require.Equal(t, kv, out.KVs[i])
					}
				}
				ft, ok := out.Uint("general.file_type")
				require.True(t, ok)
				require.Equal(t, uint64(fileTypes[tc.wantType]), ft)
			}
			require.Len(t, out.Tensors, len(base.Tensors))
			folded := map[string]bool{}
			for _, p := range a.Pairs {
				folded[p.Name] = true
			}
			for i, bt := range base.Tensors {
				ot := out.Tensors[i]
				require.Equal(t, bt.Name, ot.Name)
				require.Equal(t, bt.Shape, ot.Shape)
				if folded[bt.Name] {
					require.Equal(t, tc.wantType, ot.Type, bt.Name)
				} else {
					require.Equal(t, bt.Type, ot.Type, bt.Name)
				}
			}

			m := engine(t, files.Text, files.MMProj)
			p, err := m.Tokenize(chatPrompt(llm.MediaMarker()), img)
			require.NoError(t, err)
			toks, _ := greedy(t, m, p, 6)
			baseLP := scoreAll(t, m, p, toks)
			ad, err := m.LoadAdapter(adapterPath)
			require.NoError(t, err)
			require.NoError(t, m.SetAdapter(ad, 1))
			adapterLP := scoreAll(t, m, p, toks)

			mm := engine(t, merged, files.MMProj)
			pm, err := mm.Tokenize(chatPrompt(llm.MediaMarker()), img)
			require.NoError(t, err)
			require.Equal(t, p.Tokens, pm.Tokens)
			mergedLP := scoreAll(t, mm, pm, toks)

			moved, diff := maxAbsDiff(baseLP, adapterLP), maxAbsDiff(adapterLP, mergedLP)
			t.Logf("tokens %v: base %v, base+adapter %v, merged %v; adapter moved log-probs by up to %.4f, merged vs adapter %.2e",
				toks, baseLP, adapterLP, mergedLP, moved, diff)
			require.Greater(t, moved, 20*diff, "the adapter must change the model clearly for the comparison to mean anything")
			require.LessOrEqual(t, diff, tc.tol)
		})
	}
}

func TestMergedRejectsImpossibleQuant(t *testing.T) {
	files := tinyModel(t, testmodel.Config{Family: "llava", Seed: 2, NoMMProj: true})
	a := randomAdapter(t, files.Text, 2, 2, 1)
	out := filepath.Join(t.TempDir(), "m.gguf")
	// Rows of 64 values cannot be Q4_K (256-value blocks).
	_, err := WriteMerged(context.Background(), files.Text, out, FromLoRA(a), "q4_K")
	require.ErrorContains(t, err, "block size")
	_, err = os.Stat(out)
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = WriteMerged(context.Background(), files.Text, out, FromLoRA(a), "q9_X")
	require.ErrorContains(t, err, "unknown --quant")
}

// TestMergedGolden pins the merged file's bytes (sha256) for the tiny model and a fixed adapter,
// for the types whose ggml quantizer output does not depend on the build flags (F32, F16, Q8_0;
// cgo-notes §1: K-quants differ between -march=native and portable builds). UPDATE_GOLDEN=1
// rewrites testdata/merged.golden.json after an intended change of the generator or the writer.
func TestMergedGolden(t *testing.T) {
	got := map[string]string{}
	for _, tc := range []struct{ weights, quant string }{{"f32", QuantKeep}, {"f32", "f16"}, {"q8_0", QuantKeep}} {
		files := tinyModel(t, testmodel.Config{Family: "llava", Seed: 4, WeightType: tc.weights, NoMMProj: true})
		out := filepath.Join(t.TempDir(), "merged.gguf")
		_, err := WriteMerged(context.Background(), files.Text, out, FromLoRA(randomAdapter(t, files.Text, 4, 8, 2)), tc.quant)
		require.NoError(t, err)
		d, err := fileDigest(out)
		require.NoError(t, err)
		got[tc.weights+"/"+tc.quant] = d
	}
	golden := filepath.Join("testdata", "merged.golden.json")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		b, err := json.MarshalIndent(got, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(golden, append(b, '\n'), 0o644))
	}
	b, err := os.ReadFile(golden)
	require.NoError(t, err)
	var want map[string]string
	require.NoError(t, json.Unmarshal(b, &want))
	require.Equal(t, want, got)
}
