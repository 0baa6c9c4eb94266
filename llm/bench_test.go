package llm

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// These benchmarks back two choices of the engine (see bench/README.md, section rollout):
// graph reuse is disabled (what does it cost?), and adapters follow training either by a new GGUF
// (SwapAdapter) or in place (Update). Models: the tiny test VLM and a random 8-layer, 512-wide,
// 32k-vocab Q8_0 llama ("small").

func benchModelFiles(b *testing.B, name string) testmodel.Files {
	cfg := testmodel.Config{Family: "llava", Seed: 1, NoMMProj: true}
	if name == "small" {
		cfg = testmodel.Config{Family: "llava", Seed: 1, Layers: 8, Embd: 512, Heads: 8, KVHeads: 4, FFN: 1408,
			Vocab: 32000, WeightType: "q8_0", NoMMProj: true}
	}
	f, err := testmodel.Write(filepath.Join(b.TempDir(), name), cfg)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

func BenchmarkGraphReuse(b *testing.B) {
	for _, name := range []string{"tiny", "small"} {
		f := benchModelFiles(b, name)
		for _, reuse := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/reuse=%v", name, reuse), func(b *testing.B) {
				graphReuse = reuse
				defer func() { graphReuse = false }()
				m, err := Load(f.Text, "", Options{Threads: 1, Parallel: 4, Seed: 1})
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close()
				p, err := m.Tokenize("<|im_start|>user\nHello there, who is the spy?<|im_end|>\n<|im_start|>assistant\n")
				if err != nil {
					b.Fatal(err)
				}
				s := Sampling{Temperature: 1, N: 4, MaxTokens: 32, Seed: 1}
				tokens := 0
				b.ResetTimer()
				for range b.N {
					cs, err := m.Generate(bg, p, s)
					if err != nil {
						b.Fatal(err)
					}
					for _, c := range cs {
						tokens += len(c.Tokens)
					}
				}
				b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tok/s")
			})
		}
	}
}

func BenchmarkAdapterSwap(b *testing.B) {
	for _, name := range []string{"tiny", "small"} {
		f := benchModelFiles(b, name)
		text := readGGUF(b, f.Text)
		lora := []string{filepath.Join(b.TempDir(), "a.gguf"), filepath.Join(b.TempDir(), "b.gguf")}
		l1 := loraFile(b, text, 1, 16, 16)
		l1.write(b, lora[0])
		loraFile(b, text, 2, 16, 16).write(b, lora[1])
		floats := 0
		for _, tb := range l1.tensors {
			floats += len(tb.data) / 4
		}
		m, err := Load(f.Text, "", Options{Threads: 1, Parallel: 1})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/file", func(b *testing.B) {
			for i := range b.N {
				if _, err := m.SwapAdapter(lora[i%2]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(floats*4)/(1<<20), "adapter_MiB")
		})
		b.Run(name+"/in-place", func(b *testing.B) {
			a, err := m.LoadAdapter(lora[0])
			if err != nil {
				b.Fatal(err)
			}
			if err := m.SetAdapter(a, 1); err != nil {
				b.Fatal(err)
			}
			vals := map[string][]float32{}
			for _, tb := range l1.tensors {
				vals[tb.name] = tb.f32(b)
			}
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				for n, v := range vals {
					if err := a.Update(n, v); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(floats*4*b.N)/(1<<30)/time.Since(start).Seconds(), "GiB/s")
		})
		m.Close()
	}
}

// BenchmarkSampleToken: the Go sampler on one logits vector of a 152k vocabulary (Qwen2.5).
func BenchmarkSampleToken(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	logits := make([]float32, 151936)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64() * 3)
	}
	for _, s := range []Sampling{{Temperature: 1}, {Temperature: 1, TopK: 40}, {Temperature: 1, TopP: 0.9}} {
		b.Run(fmt.Sprintf("k=%d,p=%g", s.TopK, s.TopP), func(b *testing.B) {
			d := &distribution{}
			for range b.N {
				sampleToken(d, logits, s, rng)
			}
		})
	}
}

// BenchmarkSampleRows: the rows of one decode step sampled (G = 8 completions of a GRPO group) or
// scored (a 64-row batch), one after another and on every core (rowSampler), alternating in one
// run; ratio = serial time / parallel time. 152k vocabulary, temperature 1 and top-p 0.9.
func BenchmarkSampleRows(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const vocab = 151936
	for _, rows := range []int{8, 64} {
		logits := make([][]float32, rows)
		for i := range logits {
			logits[i] = make([]float32, vocab)
			for j := range logits[i] {
				logits[i][j] = float32(rng.NormFloat64() * 3)
			}
		}
		for _, s := range []Sampling{{Temperature: 1}, {Temperature: 1, TopP: 0.9}} {
			b.Run(fmt.Sprintf("rows=%d,p=%g", rows, s.TopP), func(b *testing.B) {
				serial, par := &rowSampler{workers: 1}, &rowSampler{}
				rngs := make([]*rand.Rand, rows)
				for i := range rngs {
					rngs[i] = rand.New(rand.NewPCG(3, uint64(i)))
				}
				run := func(r *rowSampler) time.Duration {
					start := time.Now()
					r.each(rows, vocab, func(d *distribution, i int) { sampleToken(d, logits[i], s, rngs[i]) })
					return time.Since(start)
				}
				run(serial) // allocate both samplers' buffers outside the timing
				run(par)
				var ts, tp time.Duration
				b.ResetTimer()
				for range b.N {
					ts += run(serial)
					tp += run(par)
				}
				b.ReportMetric(float64(ts.Microseconds())/float64(b.N)/1000, "serial_ms")
				b.ReportMetric(float64(tp.Microseconds())/float64(b.N)/1000, "parallel_ms")
				b.ReportMetric(float64(ts)/float64(tp), "ratio")
			})
		}
	}
}
