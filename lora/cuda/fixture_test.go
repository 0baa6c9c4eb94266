package cuda

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ollama/ollama/fs/ggml"

	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// TestRandomGGUFLoadsInLlamaCpp (CPU): a WriteRandomGGUF file with the test model's tokenizer keys
// loads in llama.cpp and generates, as BenchmarkCUDARollout needs at 7B dimensions; the K-quant
// blocks are valid for llama.cpp's own kernels too.
func TestRandomGGUFLoadsInLlamaCpp(t *testing.T) {
	c := quantConfig()
	c.NVocab = 400
	tf, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "llava", Seed: 1, Layers: 1, Embd: 64, Heads: 4,
		KVHeads: 2, FFN: 128, Vocab: c.NVocab, NoMMProj: true})
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(tf.Text)
	if err != nil {
		t.Fatal(err)
	}
	g, err := ggml.Decode(fh, -1)
	fh.Close()
	if err != nil {
		t.Fatal(err)
	}
	tok := ggml.KV{}
	for k, v := range g.KV() {
		if strings.HasPrefix(k, "tokenizer.") {
			tok[k] = v
		}
	}
	path := filepath.Join(t.TempDir(), "random.gguf")
	if err := WriteRandomGGUF(path, c, quantTypes, 3, tok); err != nil {
		t.Fatal(err)
	}
	m, err := llm.Load(path, "", llm.Options{Threads: 1, ContextSize: 256, Parallel: 2, GPULayers: -1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	chat, err := m.FormatChat([]llm.Message{{Role: "user", Content: "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Tokenize(chat)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := m.Generate(context.Background(), p, llm.Sampling{Temperature: 1, N: 2, MaxTokens: 4, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || len(cs[0].Tokens) == 0 {
		t.Fatalf("generated %d completions", len(cs))
	}
}
