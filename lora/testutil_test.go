package lora

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ollama/ollama/fs/ggml"
	"github.com/ollama/ollama/llama"
	"github.com/rs/zerolog"
)

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	zerolog.SetGlobalLevel(zerolog.WarnLevel) // -v shows test logs, not the engine's debug lines
	llama.BackendInit()
	os.Exit(m.Run())
}

// tinyConfig is a small decoder for gradient and format tests.
func tinyConfig(arch string) Config {
	c := Config{Arch: arch, NLayer: 2, NEmbd: 32, NHead: 4, NHeadKV: 2, HeadDim: 8, NFF: 64, NVocab: 300,
		NCtx: 512, NRot: 8, RMSEps: 1e-5, RopeBase: 10000, RopeScale: 1, Rope: archRope[arch]}
	if arch == "qwen2" {
		c.HasQKVBias = true
		c.RopeBase = 1000000
	}
	if arch == "qwen3" {
		c.QKNorm = true
		c.RopeBase = 1000000
	}
	return c
}

// rawWriter writes bytes as tensor data.
type rawWriter []byte

func (w rawWriter) WriteTo(out io.Writer) (int64, error) {
	n, err := out.Write(w)
	return int64(n), err
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// writeModelGGUF writes m as a GGUF llama.cpp can load (with a byte-level BPE vocabulary), its matrices
// stored as kind (F32, F16 or a quantized type via ggml_quantize_chunk).
func writeModelGGUF(t testing.TB, path string, m *Model, kind uint32, extra ...*ggml.Tensor) {
	t.Helper()
	c := m.Cfg
	tokens := make([]string, c.NVocab)
	types := make([]int32, c.NVocab)
	for i := range tokens {
		switch {
		case i < 256:
			tokens[i] = string(byteRune(i))
			types[i] = 1
		case i == 256:
			tokens[i] = "<|endoftext|>"
			types[i] = 3
		default:
			tokens[i] = fmt.Sprintf("<extra_%d>", i)
			types[i] = 4
		}
	}
	a := c.Arch
	kv := ggml.KV{
		"general.architecture":                  a,
		"general.name":                          "lora-test",
		a + ".context_length":                   uint32(c.NCtx),
		a + ".embedding_length":                 uint32(c.NEmbd),
		a + ".block_count":                      uint32(c.NLayer),
		a + ".feed_forward_length":              uint32(c.NFF),
		a + ".attention.head_count":             uint32(c.NHead),
		a + ".attention.head_count_kv":          uint32(c.NHeadKV),
		a + ".attention.layer_norm_rms_epsilon": c.RMSEps,
		a + ".rope.freq_base":                   c.RopeBase,
		"tokenizer.ggml.model":                  "gpt2",
		"tokenizer.ggml.pre":                    "qwen2",
		"tokenizer.ggml.tokens":                 tokens,
		"tokenizer.ggml.token_type":             types,
		"tokenizer.ggml.merges":                 []string{},
		"tokenizer.ggml.bos_token_id":           uint32(256),
		"tokenizer.ggml.eos_token_id":           uint32(256),
	}
	if a == "llama" {
		kv[a+".rope.dimension_count"] = uint32(c.HeadDim)
	}
	if c.HeadDim != c.NEmbd/c.NHead {
		kv[a+".attention.key_length"] = uint32(c.HeadDim)
		kv[a+".attention.value_length"] = uint32(c.HeadDim)
	}
	mat := func(name string, w []float32, in, out int) *ggml.Tensor {
		k := kind
		var data []byte
		if k == TypeF32 || in%blockSize(k) != 0 {
			k, data = TypeF32, f32Bytes(w)
		} else {
			var err error
			if data, err = quantize(k, w, out, in); err != nil {
				t.Fatal(err)
			}
		}
		return &ggml.Tensor{Name: name, Kind: k, Shape: []uint64{uint64(in), uint64(out)}, WriterTo: rawWriter(data)}
	}
	vec := func(name string, w []float32) *ggml.Tensor {
		return &ggml.Tensor{Name: name, Kind: TypeF32, Shape: []uint64{uint64(len(w))}, WriterTo: rawWriter(f32Bytes(w))}
	}
	ts := []*ggml.Tensor{mat("token_embd.weight", m.TokEmbd, c.NEmbd, c.NVocab), vec("output_norm.weight", m.OutNorm)}
	if !c.TiedOutput {
		ts = append(ts, mat("output.weight", m.Output, c.NEmbd, c.NVocab))
	}
	if c.RopeFreqs != nil {
		ts = append(ts, vec("rope_freqs.weight", c.RopeFreqs))
	}
	for il, l := range m.Layers {
		p := fmt.Sprintf("blk.%d.", il)
		ts = append(ts, vec(p+"attn_norm.weight", l.AttnNorm), vec(p+"ffn_norm.weight", l.FFNNorm))
		for _, tg := range Targets {
			in, out, _ := c.LinearShape(tg)
			ts = append(ts, mat(p+tg+".weight", m.weight(il, tg), in, out))
		}
		if l.Bq != nil {
			ts = append(ts, vec(p+"attn_q.bias", l.Bq), vec(p+"attn_k.bias", l.Bk), vec(p+"attn_v.bias", l.Bv))
		}
		if l.AttnQNorm != nil {
			ts = append(ts, vec(p+"attn_q_norm.weight", l.AttnQNorm), vec(p+"attn_k_norm.weight", l.AttnKNorm))
		}
	}
	ts = append(ts, extra...)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := ggml.WriteGGUF(f, kv, ts); err != nil {
		t.Fatal(err)
	}
}

// byteRune is GPT-2's bytes_to_unicode mapping.
func byteRune(b int) rune {
	if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
		return rune(b)
	}
	n := 0
	for x := 0; x < b; x++ {
		if !((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF)) {
			n++
		}
	}
	return rune(256 + n)
}

// randomAdapter returns an adapter with random A and a random non-zero B, so it changes the model.
func randomAdapter(t testing.TB, c Config, rank int, alpha float32, seed uint64) *Adapter {
	t.Helper()
	a, err := NewAdapter(c, AdapterOptions{Rank: rank, Alpha: alpha, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 99))
	for _, p := range a.Pairs {
		for i := range p.B {
			p.B[i] = float32(0.2 * r.NormFloat64())
		}
	}
	return a
}

func tempPath(t testing.TB, name string) string { return filepath.Join(t.TempDir(), name) }
