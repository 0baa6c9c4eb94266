package bench

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/rs/zerolog"

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
	if os.Getenv("VZ_DEBUG") == "" {
		zerolog.SetGlobalLevel(zerolog.InfoLevel) // llama.cpp's log arrives at debug level
	}
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
				par, seq, err := RolloutRatio(text, mmproj, threads, g, maxTokens, b.N)
				if err != nil {
					b.Fatal(err)
				}
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

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
