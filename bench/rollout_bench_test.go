package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

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
				par := newRollout(b, text, mmproj, threads, g, g, maxTokens)
				defer par.m.Close()
				seq := newRollout(b, text, mmproj, threads, 1, g, maxTokens)
				defer seq.m.Close()
				// Alternate the two so that load from other processes hits both alike.
				for i := range b.N {
					par.round(b, uint64(i))
					seq.round(b, uint64(i))
				}
				b.ReportMetric(par.tokensPerSec(), "parallel_tok/s")
				b.ReportMetric(seq.tokensPerSec(), "sequential_tok/s")
				b.ReportMetric(par.tokensPerSec()/seq.tokensPerSec(), "ratio")
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

// rollout is a loaded model with its prompt, timing rounds of n completions. Prompt evaluation
// is excluded: the prompt is evaluated once and cached, as in training where the G completions of
// a game state share it.
type rollout struct {
	m       *llm.Model
	p       *llm.Prompt
	s       llm.Sampling
	tokens  int
	elapsed time.Duration
}

func newRollout(b *testing.B, text, mmproj string, threads, parallel, n, maxTokens int) *rollout {
	b.Helper()
	m, err := llm.Load(text, mmproj, llm.Options{Threads: threads, ContextSize: 4096, Parallel: parallel, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
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
	r := &rollout{m: m, p: p, s: llm.Sampling{Temperature: 1, N: n, MaxTokens: maxTokens}}
	r.round(b, 1000) // warm-up, caches the prompt
	r.tokens, r.elapsed = 0, 0
	return r
}

func (r *rollout) round(b *testing.B, seed uint64) {
	r.s.Seed = seed + 1
	start := time.Now()
	cs, err := r.m.Generate(context.Background(), r.p, r.s)
	if err != nil {
		b.Fatal(err)
	}
	r.elapsed += time.Since(start)
	for _, c := range cs {
		r.tokens += len(c.Tokens)
	}
}

func (r *rollout) tokensPerSec() float64 { return float64(r.tokens) / r.elapsed.Seconds() }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
