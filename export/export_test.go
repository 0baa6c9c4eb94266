package export

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/vzlocal/vzlocal/internal/ggmlquant"

	"github.com/stretchr/testify/require"

	"github.com/vzlocal/vzlocal/llm/testmodel"
	"github.com/vzlocal/vzlocal/lora"
)

// TestGGUFExport: --format gguf writes the adapter in the asked type with alpha times --scale, so
// that Ollama's fixed scale 1.0 reproduces llama.cpp at that scale (scale·alpha/rank).
func TestGGUFExport(t *testing.T) {
	files := tinyModel(t, testmodel.Config{Family: "llava", Seed: 1})
	orig := randomAdapter(t, files.Text, 4, 8, 3)
	run := runFolder(t, orig, files)
	src, err := ResolveSource(run, "", "")
	require.NoError(t, err)
	cfg, err := lora.ReadConfig(files.Text)
	require.NoError(t, err)

	for _, tc := range []struct {
		dtype     string
		scale     float32
		wantType  uint32
		wantAlpha float32
		tol       float64
	}{
		{"f16", 0, ggmlquant.TypeF16, 8, 1e-3}, // f16 keeps ~11 bits: |x|<1 rounds by < 5e-4
		{"f32", 2, ggmlquant.TypeF32, 16, 0},
		{"f16", 0.5, ggmlquant.TypeF16, 4, 1e-3},
	} {
		out := t.TempDir()
		_, err := Export(context.Background(), src, Options{Format: "gguf", Out: out, DType: tc.dtype, Scale: tc.scale})
		require.NoError(t, err)
		path := filepath.Join(out, OutAdapter)
		g, err := readGGUF(path)
		require.NoError(t, err)
		for _, tn := range g.Tensors {
			require.Equal(t, tc.wantType, tn.Type, tn.Name)
		}
		back, err := lora.ReadAdapterGGUF(path, cfg)
		require.NoError(t, err)
		require.Equal(t, tc.wantAlpha, back.Alpha)
		require.Equal(t, orig.Rank, back.Rank)
		for i, p := range back.Pairs {
			require.Equal(t, orig.Pairs[i].Name, p.Name)
			require.LessOrEqual(t, maxAbsDiff(orig.Pairs[i].A, p.A), tc.tol)
			require.LessOrEqual(t, maxAbsDiff(orig.Pairs[i].B, p.B), tc.tol)
		}
	}
}

func TestBakeScaleWithoutAlpha(t *testing.T) {
	// alpha 0: llama.cpp applies the user scale itself (no division by rank).
	a := &lora.Adapter{Rank: 8}
	require.Equal(t, float32(16), bakeScale(a, 2).Alpha)
	require.Equal(t, float32(8), bakeScale(a, 0).Alpha)
	require.Equal(t, float32(0), a.Alpha, "the input adapter must not change")
}

// TestPEFTExport: --format peft writes PEFT's two files through package lora, and they read back
// (through lora's PEFT reader, which undoes the llama q/k row permutation) to the same adapter,
// with alpha times --scale.
func TestPEFTExport(t *testing.T) {
	files := tinyModel(t, testmodel.Config{Family: "llava", Seed: 1})
	orig := randomAdapter(t, files.Text, 4, 8, 3)
	run := runFolder(t, orig, files)
	src, err := ResolveSource(run, "", "")
	require.NoError(t, err)
	out := t.TempDir()
	res, err := Export(context.Background(), src, Options{Format: "peft", Out: out, Scale: 2})
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(out, OutPEFTWeights), filepath.Join(out, OutPEFTConfig)}, res.Files)
	cfg, err := lora.ReadConfig(files.Text)
	require.NoError(t, err)
	back, err := lora.ReadPEFT(out, cfg)
	require.NoError(t, err)
	require.Equal(t, float32(16), back.Alpha)
	require.Len(t, back.Pairs, len(orig.Pairs))
	for i, p := range back.Pairs {
		require.Equal(t, orig.Pairs[i].Name, p.Name)
		require.Equal(t, orig.Pairs[i].A, p.A)
		require.Equal(t, orig.Pairs[i].B, p.B)
	}
}

// TestPEFTExportLayers: the tensor names and target_modules follow the Hugging Face class of the
// family (transformers >= 4.52): a VLM's language_model (a regex over its layers, so the vision
// tower's q_proj etc. stay untouched), SmolVLM's text_model, a causal LM's layers without a
// projector, or the path the user names; every layout reads back to the same adapter.
func TestPEFTExportLayers(t *testing.T) {
	for _, tc := range []struct {
		family, flag string
		noMMProj     bool
		wantPrefix   string
		wantModules  string
	}{
		{"llava", "", false, "base_model.model.model.language_model.layers.0.", `"target_modules": "model\\.language_model\\.layers\\.\\d+\\.(self_attn\\.q_proj|`},
		{"qwen2vl", "auto", false, "base_model.model.model.language_model.layers.0.", `model\\.language_model\\.layers`},
		{"smolvlm", "", false, "base_model.model.model.text_model.layers.0.", `model\\.text_model\\.layers`},
		{"llava", "", true, "base_model.model.model.layers.0.", `"q_proj"`},
		{"llava", "language_model.model.layers", false, "base_model.model.language_model.model.layers.0.", `"language_model\\.model\\.layers`},
	} {
		t.Run(tc.family+"/"+tc.flag, func(t *testing.T) {
			files := tinyModel(t, testmodel.Config{Family: tc.family, Seed: 1})
			orig := randomAdapter(t, files.Text, 2, 4, 3)
			mm := files.MMProj
			if tc.noMMProj {
				mm = ""
			}
			src, err := ResolveSource(runFolder(t, orig, testmodel.Files{Text: files.Text, MMProj: mm}), "", "")
			require.NoError(t, err)
			out := t.TempDir()
			_, err = Export(context.Background(), src, Options{Format: "peft", Out: out, PEFTLayers: tc.flag})
			require.NoError(t, err)
			st, err := os.ReadFile(filepath.Join(out, OutPEFTWeights))
			require.NoError(t, err)
			require.Contains(t, string(st), tc.wantPrefix+"self_attn.q_proj.lora_A.weight")
			js, err := os.ReadFile(filepath.Join(out, OutPEFTConfig))
			require.NoError(t, err)
			require.Contains(t, string(js), tc.wantModules)
			cfg, err := lora.ReadConfig(files.Text)
			require.NoError(t, err)
			back, err := lora.ReadPEFT(out, cfg)
			require.NoError(t, err)
			for i, p := range back.Pairs {
				require.Equal(t, orig.Pairs[i].A, p.A)
				require.Equal(t, orig.Pairs[i].B, p.B)
			}
		})
	}
	files := tinyModel(t, testmodel.Config{Family: "llava", Seed: 1})
	src, err := ResolveSource(runFolder(t, randomAdapter(t, files.Text, 2, 4, 3), files), "", "")
	require.NoError(t, err)
	_, err = Export(context.Background(), src, Options{Format: "peft", Out: t.TempDir(), PEFTLayers: "model.layers.0; rm"})
	require.ErrorContains(t, err, "not a dotted module path")
}
