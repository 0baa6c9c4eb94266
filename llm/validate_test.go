package llm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// ggufWithoutArch is a valid GGUF whose only key is general.name (WriteGGUF insists on an
// architecture, so it is written by hand).
func ggufWithoutArch() []byte {
	var b bytes.Buffer
	b.WriteString("GGUF")
	for _, v := range []any{uint32(3), uint64(0), uint64(1), uint64(len("general.name"))} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("general.name")
	binary.Write(&b, binary.LittleEndian, uint32(8)) // string
	binary.Write(&b, binary.LittleEndian, uint64(4))
	b.WriteString("tiny")
	return b.Bytes()
}

// Every bad file must be rejected by our own checks (a FileError naming the file, with our
// wording), never reach llama.cpp: some of these abort or crash the process there.
func TestLoadRejectsBadFiles(t *testing.T) {
	good := tinyModelFiles(t, "llava")
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	writeBytes := func(name string, b []byte) string {
		require.NoError(t, os.WriteFile(path(name), b, 0o644))
		return path(name)
	}
	textBytes, err := os.ReadFile(good.Text)
	require.NoError(t, err)
	text := readGGUF(t, good.Text)
	proj := readGGUF(t, good.MMProj)
	derived := func(name string, g *ggufFile) string {
		g.write(t, path(name))
		return path(name)
	}
	withKV := func(k string, v any) *ggufFile {
		g := proj.clone()
		if v == nil {
			delete(g.kv, k)
		} else {
			g.kv[k] = v
		}
		return g
	}
	narrow := proj.clone()
	h := proj.tensor("mm.2.weight").shape[0]
	narrow.tensors = append(narrow.without("mm.2.weight").without("mm.2.bias").tensors,
		&tensorBytes{name: "mm.2.weight", shape: []uint64{h, 48}, data: make([]byte, 4*int(h)*48)},
		&tensorBytes{name: "mm.2.bias", shape: []uint64{48}, data: make([]byte, 4*48)})
	// gemma3 with a window and fewer than 6 layers loads in llama.cpp, then its first decode aborts
	g5, err := testmodel.Write(filepath.Join(dir, "g5"), testmodel.Config{Family: "gemma3", Seed: 1, Layers: 5, NoMMProj: true})
	require.NoError(t, err)
	gemma5 := readGGUF(t, g5.Text)
	gemma5.kv["gemma3.attention.sliding_window"] = uint32(512)
	dupVocab := text.clone()
	toks := slices.Clone(text.kv.Strings("tokenizer.ggml.tokens"))
	toks[320] = toks[319]
	dupVocab.kv["tokenizer.ggml.tokens"] = toks
	qwen := tinyModelFiles(t, "qwen2vl")
	qtext, qproj := readGGUF(t, qwen.Text), readGGUF(t, qwen.MMProj)
	wideSections := qtext.clone()
	wideSections.kv["qwen2vl.rope.dimension_sections"] = []int32{8, 8, 8, 0} // 24 > head dim 16
	withProjKV := func(g *ggufFile, k string, v any) *ggufFile {
		g = g.clone()
		g.kv[k] = v
		return g
	}
	wide, err := testmodel.Write(filepath.Join(dir, "wide"), testmodel.Config{Family: "llava", Seed: 1, Embd: 128, NoMMProj: true})
	require.NoError(t, err)

	cases := []struct {
		name        string
		model, proj string
		kind        string // which file the error must name
		problem     string
	}{
		{"missing model", path("nope.gguf"), "", "model", "does not exist"},
		{"directory", dir, "", "model", "is a directory"},
		{"empty file", writeBytes("empty.gguf", nil), "", "model", "not a GGUF file (0 bytes long)"},
		{"not gguf", writeBytes("text.txt", []byte("hello, world\n")), "", "model", `not a GGUF file (magic "hell"`},
		{"truncated header", writeBytes("trunc.gguf", textBytes[:200]), "", "model", "corrupt GGUF header"},
		{"truncated data", writeBytes("short.gguf", textBytes[:len(textBytes)-1000]), "", "model", "corrupt GGUF header"},
		{"no architecture", writeBytes("noarch.gguf", ggufWithoutArch()), "", "model", "no general.architecture"},
		{"mmproj as model", good.MMProj, "", "model", "is a vision projector"},
		{"adapter as model", derived("adapter.gguf", loraFile(t, text, 1, 4, 8)), "", "model", "is a LoRA adapter"},
		{"gemma3 window with 5 layers", derived("gemma5.gguf", gemma5), "", "model", "needs at least 6 layers (every 6th is global), it has 5"},
		{"duplicate token", derived("dupvocab.gguf", dupVocab), "", "model", "tokens 319 and 320 of tokenizer.ggml.tokens are both"},
		{"qwen2vl without a k bias", derived("qnobias.gguf", qtext.without("blk.1.attn_k.bias")), "", "model", "missing tensor blk.1.attn_k.bias"},
		{"qwen2vl sections wider than the head", derived("qsec.gguf", wideSections), "", "model", "sum to 24, more than the 16 rotary dimensions"},
		{"qwen2.5vl projection_dim", qwen.Text, derived("qpd.gguf", withProjKV(qproj, "clip.vision.projection_dim", uint32(48))), "mmproj", "needs clip.vision.projection_dim 64"},
		{"missing mmproj", good.Text, path("nope-mmproj.gguf"), "mmproj", "does not exist"},
		{"text model as mmproj", good.Text, good.Text, "mmproj", `general.architecture is "llama", want "clip"`},
		{"no vision encoder", good.Text, derived("novis.gguf", withKV("clip.has_vision_encoder", nil)), "mmproj", "no vision encoder"},
		{"no image_mean", good.Text, derived("nomean.gguf", withKV("clip.vision.image_mean", nil)), "mmproj", "clip.vision.image_mean is missing"},
		{"no image_std", good.Text, derived("nostd.gguf", withKV("clip.vision.image_std", nil)), "mmproj", "clip.vision.image_std is missing"},
		{"image_size int32", good.Text, derived("i32.gguf", withKV("clip.vision.image_size", int32(32))), "mmproj", "clip.vision.image_size has type int32, want uint32"},
		{"epsilon uint32", good.Text, derived("eps.gguf", withKV("clip.vision.attention.layer_norm_epsilon", uint32(1))), "mmproj", "layer_norm_epsilon has type uint32, want float32"},
		{"no projection_dim", good.Text, derived("nopd.gguf", withKV("clip.vision.projection_dim", nil)), "mmproj", "clip.vision.projection_dim is missing"},
		{"feature layer past the encoder", good.Text, derived("fl3.gguf", withKV("clip.vision.feature_layer", []int32{1, 3})), "mmproj", "names layer 3, the vision encoder has 2 blocks"},
		{"feature layer scalar past the encoder", good.Text, derived("fl3s.gguf", withKV("clip.vision.feature_layer", uint32(3))), "mmproj", "names layer 3"},
		{"feature layers as strings", good.Text, derived("fls.gguf", withKV("clip.vision.feature_layer", []string{"1"})), "mmproj", "clip.vision.feature_layer has type"},
		{"feature layers wider than mm.0", good.Text, derived("fl12.gguf", withKV("clip.vision.feature_layer", []int32{1, 2})), "mmproj", "stacks 2 layers of width 32, mm.0.weight takes 32"},
		{"odd pinpoints", good.Text, derived("pp.gguf", withKV("clip.vision.image_grid_pinpoints", []int32{32, 32, 64})), "mmproj", "has 3 values, want (width, height) pairs"},
		{"unknown projector", good.Text, derived("foo.gguf", withKV("clip.projector_type", "foo")), "mmproj", `unsupported projector type "foo"`},
		{"missing projector tensor", good.Text, derived("nomm2b.gguf", proj.without("mm.2.bias")), "mmproj", "missing tensor mm.2.bias"},
		{"missing position embedding", good.Text, derived("nopos.gguf", proj.without("v.position_embd.weight")), "mmproj", "missing tensor v.position_embd.weight"},
		{"projector narrower than model", good.Text, derived("narrow.gguf", narrow), "mmproj", "projector output width 48 (mm.2.weight) does not fit the text model's embedding width 64"},
		{"model wider than projector", wide.Text, good.MMProj, "mmproj", "projector output width 64 (mm.2.weight) does not fit the text model's embedding width 128"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Load(c.model, c.proj, testOptions())
			if m != nil {
				// the problem must be caught at Load, not abort the first decode
				if p, err := m.TokenizeText("hi", true); err == nil {
					m.Generate(bg, &Prompt{Tokens: p, NPos: len(p)}, Sampling{MaxTokens: 1})
				}
				m.Close()
			}
			var fe *FileError
			require.True(t, errors.As(err, &fe), "want a FileError, got %v", err)
			require.Equal(t, c.kind, fe.Kind)
			want := c.model
			if c.kind == "mmproj" {
				want = c.proj
			}
			require.Equal(t, want, fe.Path)
			require.Contains(t, fe.Problem, c.problem)
			require.False(t, strings.Contains(fe.Problem, "llama.cpp"), "reached llama.cpp: %v", err)
			require.Contains(t, err.Error(), want)
		})
	}
}

// Valid feature layers and pinpoints (any 32-bit integer array, as clip reads them) still load.
func TestLoadAcceptsClipIntArrays(t *testing.T) {
	good := tinyModelFiles(t, "llava")
	g := readGGUF(t, good.MMProj).clone()
	g.kv["clip.vision.feature_layer"] = []uint32{1}
	g.kv["clip.vision.image_grid_pinpoints"] = []int32{32, 32, 32, 64}
	p := filepath.Join(t.TempDir(), "mmproj.gguf")
	g.write(t, p)
	m, err := Load(good.Text, p, testOptions())
	require.NoError(t, err)
	defer m.Close()
	_, err = m.ChatPrompt("", "What is it?", testmodel.TestImage(40, 30, 1))
	require.NoError(t, err)
}
