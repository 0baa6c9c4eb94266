package testmodel

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/ollama/ollama/fs/ggml"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.json")

// goldenConfigs are the configurations whose file hashes are pinned in testdata/golden.json: any
// change of the bytes (weights, keys, tokenizer) shows up as a diff to review.
var goldenConfigs = []Config{
	{Family: "llava", Seed: 1},
	{Family: "qwen2vl", Seed: 1},
	{Family: "gemma3", Seed: 1},
	{Family: "smolvlm", Seed: 1},
	{Family: "internvl", Seed: 1},
	{Family: "llava", Seed: 1, WeightType: "f16"},
	{Family: "qwen2vl", Seed: 1, WeightType: "q8_0"},
	{Family: "internvl", Seed: 7, Vocab: 1000, Layers: 1, NoMMProj: true},
}

type goldenFiles struct {
	Text, MMProj string // sha256, "" when absent
}

func goldenName(c Config) string {
	return fmt.Sprintf("%s/seed%d/%s/vocab%d/layers%d/nommproj=%v", c.Family, c.Seed, cmpOr(c.WeightType, "f32"), c.Vocab, c.Layers, c.NoMMProj)
}

func cmpOr(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func TestWriteIsDeterministicAndMatchesGolden(t *testing.T) {
	got := map[string]goldenFiles{}
	for _, cfg := range goldenConfigs {
		a, err := Write(t.TempDir(), cfg)
		require.NoError(t, err)
		b, err := Write(t.TempDir(), cfg)
		require.NoError(t, err)
		ha, hb := fileHashes(t, a), fileHashes(t, b)
		require.Equal(t, ha, hb, "%s: two writes differ", goldenName(cfg))
		require.Equal(t, cfg.NoMMProj, a.MMProj == "")
		got[goldenName(cfg)] = ha
	}
	path := filepath.Join("testdata", "golden.json")
	if *update {
		data, err := json.MarshalIndent(got, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, append(data, '\n'), 0o644))
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err, "run with -update to create it")
	var want map[string]goldenFiles
	require.NoError(t, json.Unmarshal(data, &want))
	require.Equal(t, want, got)
}

func fileHashes(t *testing.T, f Files) goldenFiles {
	hash := func(p string) string {
		if p == "" {
			return ""
		}
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		s := sha256.Sum256(data)
		return hex.EncodeToString(s[:])
	}
	return goldenFiles{Text: hash(f.Text), MMProj: hash(f.MMProj)}
}

func TestSeedChangesWeights(t *testing.T) {
	a, err := Write(t.TempDir(), Config{Seed: 1})
	require.NoError(t, err)
	b, err := Write(t.TempDir(), Config{Seed: 2})
	require.NoError(t, err)
	ha, hb := fileHashes(t, a), fileHashes(t, b)
	require.NotEqual(t, ha.Text, hb.Text)
	require.NotEqual(t, ha.MMProj, hb.MMProj)
}

// TestWeightStdScalesWeights reads a weight back: its spread follows WeightStd, norms stay 1.
func TestWeightStdScalesWeights(t *testing.T) {
	for _, std := range []float32{0, 0.5} {
		files, err := Write(t.TempDir(), Config{WeightStd: std, NoMMProj: true})
		require.NoError(t, err)
		q := tensorValues(t, files.Text, "blk.0.attn_q.weight")
		var sq float64
		for _, v := range q {
			sq += float64(v) * float64(v)
		}
		want := float64(cmp.Or(std, initStd))
		require.InDelta(t, want, math.Sqrt(sq/float64(len(q))), want*0.05, "std %v", std)
		for _, v := range tensorValues(t, files.Text, "blk.0.attn_norm.weight") {
			require.Equal(t, float32(1), v)
		}
	}
}

// tensorValues reads an F32 tensor from a GGUF file.
func tensorValues(t *testing.T, path, name string) []float32 {
	g := readGGUF(t, path)
	for _, ts := range g.Tensors().Items() {
		if ts.Name != name {
			continue
		}
		require.Equal(t, uint32(ggml.TensorTypeF32), ts.Kind)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		off := int(g.Tensors().Offset + ts.Offset)
		out := make([]float32, ts.Elements())
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[off+4*i:]))
		}
		return out
	}
	t.Fatalf("tensor %s not found", name)
	return nil
}

func TestWriteIntoAFileFails(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, err := Write(file, Config{})
	require.ErrorContains(t, err, "testmodel")
}

func TestWriteLeavesNoTempFiles(t *testing.T) {
	dir := t.TempDir()
	_, err := Write(dir, Config{Family: "gemma3"})
	require.NoError(t, err)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{TextFile, MMProjFile}, names)
}

// TestTensorTypes reads the files back and checks which tensors each weight type quantizes: llama.cpp
// aborts when a position embedding is not F32 or a Q8_0 row is not whole blocks (tiny-models.md §8).
func TestTensorTypes(t *testing.T) {
	for _, tc := range []struct {
		weightType string
		matrix     ggml.TensorType // token_embd, attention, mm.* matrices
		conv       ggml.TensorType // 4-D patch kernels
	}{
		{"f32", ggml.TensorTypeF32, ggml.TensorTypeF32},
		{"f16", ggml.TensorTypeF16, ggml.TensorTypeF16},
		{"q8_0", ggml.TensorTypeQ8_0, ggml.TensorTypeF32},
	} {
		t.Run(tc.weightType, func(t *testing.T) {
			files, err := Write(t.TempDir(), Config{Family: "internvl", WeightType: tc.weightType})
			require.NoError(t, err)
			text := readGGUF(t, files.Text)
			require.Equal(t, tc.matrix, kindOf(t, text, "token_embd.weight"))
			require.Equal(t, tc.matrix, kindOf(t, text, "blk.1.attn_k.weight"))
			require.Equal(t, ggml.TensorTypeF32, kindOf(t, text, "blk.1.attn_k.bias"))
			require.Equal(t, ggml.TensorTypeF32, kindOf(t, text, "output_norm.weight"))

			mm := readGGUF(t, files.MMProj)
			require.Equal(t, tc.matrix, kindOf(t, mm, "mm.model.mlp.1.weight"))
			require.Equal(t, tc.conv, kindOf(t, mm, "v.patch_embd.weight"))
			require.Equal(t, ggml.TensorTypeF32, kindOf(t, mm, "v.position_embd.weight"))
			require.Equal(t, ggml.TensorTypeF32, kindOf(t, mm, "v.class_embd"))
		})
	}
}

func readGGUF(t *testing.T, path string) *ggml.GGML {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	g, err := ggml.Decode(f, -1)
	require.NoError(t, err)
	return g
}

func kindOf(t *testing.T, g *ggml.GGML, name string) ggml.TensorType {
	for _, ts := range g.Tensors().Items() {
		if ts.Name == name {
			return ggml.TensorType(ts.Kind)
		}
	}
	t.Fatalf("tensor %s not found", name)
	return 0
}

// TestTextKVTypes pins the key types llama.cpp insists on (u32 hparams, f32 epsilons, i32 sections).
func TestTextKVTypes(t *testing.T) {
	files, err := Write(t.TempDir(), Config{Family: "qwen2vl", Layers: 3, Embd: 128, Heads: 8, KVHeads: 4, FFN: 96})
	require.NoError(t, err)
	kv := readGGUF(t, files.Text).KV()
	require.Equal(t, "qwen2vl", kv.Architecture())
	require.Equal(t, uint64(3), kv.BlockCount())
	require.Equal(t, uint64(128), kv.EmbeddingLength())
	require.Equal(t, []int32{2, 3, 3, 0}, kv.Ints("rope.dimension_sections"))
	require.InDelta(t, 1e-6, kv.Float("attention.layer_norm_rms_epsilon"), 1e-12)
	require.Len(t, kv.Strings("tokenizer.ggml.tokens"), tinyVocabSize)

	mm := readGGUF(t, files.MMProj).KV()
	require.Equal(t, "clip", mm.Architecture())
	require.Equal(t, uint32(128), mm.Uint("vision.projection_dim"))
	require.Equal(t, "qwen2.5vl_merger", mm.String("projector_type"))
}

func TestMRoPESections(t *testing.T) {
	for _, tc := range []struct {
		headDim int
		want    []int32
	}{
		{16, []int32{2, 3, 3, 0}},
		{64, []int32{8, 12, 12, 0}},
		{128, []int32{16, 24, 24, 0}}, // Qwen2.5-VL-7B
	} {
		require.Equal(t, tc.want, mropeSections(tc.headDim), "head_dim %d", tc.headDim)
	}
}

func TestBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown family", Config{Family: "llama4"}, `unknown family "llama4"`},
		{"unknown weight type", Config{WeightType: "q4_k"}, `unknown weight type "q4_k"`},
		{"heads do not divide width", Config{Embd: 60, Heads: 8}, "not a multiple of Heads"},
		{"kv heads do not divide heads", Config{Heads: 4, KVHeads: 3}, "not a multiple of KVHeads"},
		{"odd head dim", Config{Embd: 60, Heads: 4, KVHeads: 4}, "must be even"},
		{"qwen2vl head dim", Config{Family: "qwen2vl", Embd: 48, Heads: 4}, "multiple of 8"},
		{"negative layers", Config{Layers: -1}, "Layers = -1"},
		{"vocab too small", Config{Vocab: 100}, "Vocab = 100"},
		{"q8_0 width", Config{WeightType: "q8_0", Embd: 48, Heads: 4}, "multiples of 32"},
		{"negative std", Config{WeightStd: -1}, "WeightStd = -1"},
		{"NaN std", Config{WeightStd: float32(math.NaN())}, "WeightStd = NaN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			_, err := Write(dir, tc.cfg)
			require.ErrorContains(t, err, tc.want)
			_, statErr := os.Stat(dir)
			require.True(t, os.IsNotExist(statErr), "a bad config must not create files")
		})
	}
}

func TestVocabulary(t *testing.T) {
	v, err := buildVocab(400)
	require.NoError(t, err)
	require.Len(t, v.tokens, 400)
	require.Equal(t, "Ġ", v.tokens[' '])
	require.Equal(t, "Ċ", v.tokens['\n'])
	require.Equal(t, "A", v.tokens['A'])
	require.Equal(t, 288, TokenID("<|endoftext|>"))
	require.Equal(t, 307, TokenID("<image>"))
	require.Equal(t, 323, TokenID("<row_4_col_4>"))
	require.Equal(t, -1, TokenID("no such token"))
	require.Equal(t, "[extra_324]", v.tokens[324])
	require.Equal(t, tokenControl, v.types[TokenID("<|im_end|>")])
	require.Equal(t, tokenUserDefined, v.types[TokenID("<row_1_col_1>")])
	require.Equal(t, tokenNormal, v.types[399])
}

func TestEncodeRoundTrip(t *testing.T) {
	vals := make([]float32, 64)
	rng := wyrand{state: 3}
	for i := range vals {
		vals[i] = rng.bell() * 0.02
	}
	vals[5] = 0.1 // the block maximum
	q := encode(nil, vals, kindQ80)
	require.Len(t, q, 2*34)
	d := decodeF16(q[0:2])
	require.InDelta(t, 0.1/127, d, 1e-6)
	require.Equal(t, int8(127), int8(q[2+5]))
	for i, v := range vals[:32] {
		require.InDelta(t, v, d*float32(int8(q[2+i])), float64(d)/2+1e-7, "q8_0 element %d", i)
	}
	h := encode(nil, vals, kindF16)
	require.Len(t, h, 128)
	for i, v := range vals {
		require.InDelta(t, v, decodeF16(h[2*i:2*i+2]), 1e-4)
	}
	require.Len(t, encode(nil, vals, kindF32), 256)
}

func TestBellIsStandardish(t *testing.T) {
	rng := wyrand{state: 42}
	const n = 200000
	var sum, sq float64
	for range n {
		v := float64(rng.bell())
		sum += v
		sq += v * v
	}
	mean := sum / n
	require.InDelta(t, 0, mean, 0.01)
	require.InDelta(t, 1, sq/n-mean*mean, 0.02)
}

func TestTestImage(t *testing.T) {
	a := TestImage(40, 30, 1)
	require.Equal(t, a, TestImage(40, 30, 1))
	require.NotEqual(t, a, TestImage(40, 30, 2))
	img, err := png.Decode(bytes.NewReader(a))
	require.NoError(t, err)
	require.Equal(t, 40, img.Bounds().Dx())
	require.Equal(t, 30, img.Bounds().Dy())
	img, err = png.Decode(bytes.NewReader(TestImage(0, -3, 1)))
	require.NoError(t, err)
	require.Equal(t, 1, img.Bounds().Dx())
}
