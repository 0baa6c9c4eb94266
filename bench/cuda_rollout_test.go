package bench

import (
	"context"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/fs/ggml"

	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/llm/testmodel"
	"github.com/vzlocal/vzlocal/lora/cuda"
)

// BenchmarkCUDARollout: llama.cpp rollout throughput on the GPU (ggml's CUDA backend from `make
// cuda`) for G = 8 parallel completions of one prompt, on random models with Qwen2.5-7B's
// dimensions stored as Q4_K_M-like (Q4_K, Q6_K for attn_v and ffn_down) and Q8_0 blocks, with the
// tiny test model's tokenizer padded to the 152,064-token vocabulary. Generated tokens per second
// of the 8 completions together, prompt evaluation excluded (cached once, as in training).
//
//	eval "$(lora/cuda/env.sh)"; bin/bench.test -test.run '^$' -test.bench CUDARollout -test.benchtime 3x
//
// Skipped unless llama.cpp offloads the model to a GPU (llm.Info().GPU).
func BenchmarkCUDARollout(b *testing.B) {
	if !strings.Contains(os.Getenv("OLLAMA_LIBRARY_PATH"), "cuda") {
		b.Skip("needs ggml's CUDA backend: make cuda, then eval \"$(lora/cuda/env.sh)\" before starting the process")
	}
	c := cudaConfig(cudaSizes[2].cfg)
	tok := rolloutTokenizer(b, c.NVocab)
	for _, q := range []struct {
		name  string
		types []uint32
	}{
		{"q4_k_m", []uint32{cuda.TypeQ4_K, cuda.TypeQ4_K, cuda.TypeQ6_K, cuda.TypeQ4_K, cuda.TypeQ4_K, cuda.TypeQ4_K, cuda.TypeQ6_K}},
		{"q8_0", []uint32{cuda.TypeQ8_0, cuda.TypeQ8_0, cuda.TypeQ8_0, cuda.TypeQ8_0, cuda.TypeQ8_0, cuda.TypeQ8_0, cuda.TypeQ8_0}},
	} {
		b.Run("qwen2.5-7b-"+q.name+"/G=8", func(b *testing.B) {
			path := b.TempDir() + "/model.gguf"
			if err := cuda.WriteRandomGGUF(path, c, q.types, 1, tok); err != nil {
				b.Fatal(err)
			}
			m, err := llm.Load(path, "", llm.Options{Threads: runtime.NumCPU(), ContextSize: 4096, Parallel: 8, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			if !m.Info().GPU {
				b.Skip("llama.cpp found no GPU device: check OLLAMA_LIBRARY_PATH and LD_LIBRARY_PATH (lora/cuda/env.sh)")
			}
			chat, err := m.FormatChat([]llm.Message{{Role: "user", Content: "Describe the two images and say which one differs."}})
			if err != nil {
				b.Fatal(err)
			}
			p, err := m.Tokenize(chat)
			if err != nil {
				b.Fatal(err)
			}
			s := llm.Sampling{Temperature: 1, N: 8, MaxTokens: 128, Seed: 1}
			if _, err := m.Generate(context.Background(), p, s); err != nil { // warm-up, caches the prompt
				b.Fatal(err)
			}
			tokens, elapsed := 0, time.Duration(0)
			b.ResetTimer()
			for i := range b.N {
				s.Seed = uint64(i + 2)
				t0 := time.Now()
				cs, err := m.Generate(context.Background(), p, s)
				if err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(t0)
				for _, c := range cs {
					tokens += len(c.Tokens)
				}
			}
			b.ReportMetric(float64(tokens)/elapsed.Seconds(), "tok/s")
		})
	}
}

// rolloutTokenizer returns the tokenizer.* keys of the tiny test model with its vocabulary padded
// to vocab tokens (testmodel's byte-level BPE and chat template).
func rolloutTokenizer(b *testing.B, vocab int) ggml.KV {
	f, err := testmodel.Write(b.TempDir(), testmodel.Config{Family: "llava", Seed: 1, Layers: 1, Embd: 64, Heads: 4,
		KVHeads: 2, FFN: 128, Vocab: vocab, NoMMProj: true})
	if err != nil {
		b.Fatal(err)
	}
	fh, err := os.Open(f.Text)
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	g, err := ggml.Decode(fh, -1)
	if err != nil {
		b.Fatal(err)
	}
	out := ggml.KV{}
	for k, v := range g.KV() {
		if strings.HasPrefix(k, "tokenizer.") {
			out[k] = v
		}
	}
	return out
}
