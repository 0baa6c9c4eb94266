package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// BenchmarkRollout measures rollout throughput (generated tokens per second) of G completions of
// one image prompt decoded in parallel as G sequences sharing the prompt's KV cache, against the
// same G completions decoded one after another (Parallel 1), and reports the ratio.
//
// Models: "tiny" (the 2-layer test VLM), "small" (a random 8-layer llama, 512 wide, 32k vocab,
// Q8_0; text only) and, when VZ_BENCH_GGUF is set, that GGUF (with VZ_BENCH_MMPROJ if set).
// VZ_BENCH_THREADS sets llama.cpp's threads (default: all cores), VZ_BENCH_TOKENS the tokens per
// completion (default 64).
func BenchmarkRollout(b *testing.B) {
	models := []string{"tiny", "small"}
	if os.Getenv("VZ_BENCH_GGUF") != "" {
		models = append(models, "gguf")
	}
	threads := envInt("VZ_BENCH_THREADS", runtime.NumCPU())
	maxTokens := envInt("VZ_BENCH_TOKENS", 64)
	for _, name := range models {
		text, mmproj := rolloutModel(b, name)
		for _, g := range []int{1, 4, 8} {
			b.Run(fmt.Sprintf("%s/G=%d", name, g), func(b *testing.B) {
				par := rolloutTokensPerSec(b, text, mmproj, threads, g, g, maxTokens)
				seq := rolloutTokensPerSec(b, text, mmproj, threads, 1, g, maxTokens)
				b.ReportMetric(par, "parallel_tok/s")
				b.ReportMetric(seq, "sequential_tok/s")
				b.ReportMetric(par/seq, "ratio")
			})
		}
	}
}

func rolloutModel(b *testing.B, name string) (text, mmproj string) {
	switch name {
	case "tiny":
		f, err := testmodel.Write(b.TempDir(), testmodel.Config{Family: "llava", Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		return f.Text, f.MMProj
	case "small":
		f, err := testmodel.Write(b.TempDir(), testmodel.Config{Family: "llava", Seed: 1, Layers: 8, Embd: 512,
			Heads: 8, KVHeads: 4, FFN: 1408, Vocab: 32000, WeightType: "q8_0", NoMMProj: true})
		if err != nil {
			b.Fatal(err)
		}
		return f.Text, ""
	default:
		return os.Getenv("VZ_BENCH_GGUF"), os.Getenv("VZ_BENCH_MMPROJ")
	}
}

// rolloutTokensPerSec loads the model with the given parallelism, warms up once, then times
// b.N rounds of n completions and returns generated tokens per second (prompt evaluation
// excluded: the prompt is evaluated once and cached, as in training where G completions share it).
func rolloutTokensPerSec(b *testing.B, text, mmproj string, threads, parallel, n, maxTokens int) float64 {
	b.Helper()
	m, err := llm.Load(text, mmproj, llm.Options{Threads: threads, ContextSize: 4096, Parallel: parallel, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	msg := "Describe the two images and say which one differs."
	var images [][]byte
	if mmproj != "" {
		msg = llm.MediaMarker() + "\n" + msg
		images = append(images, testmodel.TestImage(64, 48, 1))
	}
	chat, err := m.FormatChat([]llm.Message{{Role: "system", Content: "You are playing Who is the Spy."}, {Role: "user", Content: msg}})
	if err != nil {
		b.Fatal(err)
	}
	p, err := m.Tokenize(chat, images...)
	if err != nil {
		b.Fatal(err)
	}
	s := llm.Sampling{Temperature: 1, N: n, MaxTokens: maxTokens, Seed: 1}
	if _, err := m.Generate(context.Background(), p, s); err != nil { // warm-up, caches the prompt
		b.Fatal(err)
	}
	tokens := 0
	start := time.Now()
	for i := range b.N {
		s.Seed = uint64(i + 2)
		cs, err := m.Generate(context.Background(), p, s)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range cs {
			tokens += len(c.Tokens)
		}
	}
	return float64(tokens) / time.Since(start).Seconds()
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
