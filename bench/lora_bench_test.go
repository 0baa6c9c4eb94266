package bench

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vzlocal/vzlocal/llm/testmodel"
	"github.com/vzlocal/vzlocal/lora"
)

// loraQwen05Config has the dimensions of Qwen2.5-0.5B (random weights; nothing is downloaded).
func loraQwen05Config() lora.Config {
	return lora.Config{Arch: "qwen2", NLayer: 24, NEmbd: 896, NHead: 14, NHeadKV: 2, HeadDim: 64, NFF: 4864,
		NVocab: 151936, NCtx: 32768, NRot: 64, RMSEps: 1e-6, RopeBase: 1e6, RopeScale: 1, Rope: lora.RopeNeox,
		TiedOutput: true, HasQKVBias: true}
}

var (
	loraQwenOnce  sync.Once
	loraQwenModel *lora.Model
)

func loraBenchModel(b *testing.B, name string) *lora.Model {
	switch name {
	case "tiny":
		f, err := testmodel.Write(b.TempDir(), testmodel.Config{Family: "llava", Seed: 1, NoMMProj: true})
		if err != nil {
			b.Fatal(err)
		}
		m, err := lora.LoadModel(f.Text)
		if err != nil {
			b.Fatal(err)
		}
		return m
	case "qwen2.5-0.5b":
		loraQwenOnce.Do(func() { loraQwenModel = lora.RandomModel(loraQwen05Config(), 1) })
		return loraQwenModel
	}
	b.Fatalf("unknown model %s", name)
	return nil
}

// loraPeakHeap samples the Go heap's live objects every 10 ms (runtime/metrics, which does not stop the
// world as ReadMemStats would) until stop is called, and returns the peak in bytes.
func loraPeakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// loraSkipLong skips a run that takes minutes on a 2-core machine unless the test binary's -timeout
// leaves room for it (make bench runs with the default 10m; the README command uses 60m).
func loraSkipLong(b *testing.B) {
	f := flag.Lookup("test.timeout")
	if f == nil {
		return
	}
	if d, ok := f.Value.(flag.Getter).Get().(time.Duration); ok && d > 0 && d < 30*time.Minute {
		b.Skipf("takes minutes on 2 cores: run with -timeout 30m or more (have %v)", d)
	}
}

// loraSeqBatch is one sequence of n tokens, every token after the first scored, with weights of mixed sign.
func loraSeqBatch(c lora.Config, n int) (*lora.Batch, [][]float32) {
	r := rand.New(rand.NewPCG(1, 1))
	s := lora.Sequence{Tokens: make([]int32, n)}
	w := make([]float32, n)
	for i := range s.Tokens {
		s.Tokens[i] = int32(r.IntN(c.NVocab))
		w[i] = float32(r.NormFloat64())
	}
	w[0] = 0
	return &lora.Batch{Seqs: []lora.Sequence{s}}, [][]float32{w}
}

// BenchmarkLoRABackward measures forward+backward (LoRA rank 16 on all 7 targets) tokens/s, achieved
// GFLOP/s against OpenBLAS sgemm GFLOP/s measured in the same run at the same thread count (the
// ratio; ratio_cpu is the same per CPU-second, robust to other jobs on a shared machine), and the
// peak Go heap (live objects, the base weights included), for the tiny test model and a Qwen2.5-0.5B-sized random model.
//
//	./scripts/go test ./bench/ -run '^$' -bench LoRABackward -benchtime 1x -timeout 60m
func BenchmarkLoRABackward(b *testing.B) {
	for _, model := range []string{"tiny", "qwen2.5-0.5b"} {
		for _, n := range []int{512, 2048} {
			for _, threads := range []int{1, runtime.NumCPU()} {
				name := fmt.Sprintf("%s/seq=%d/threads=%d", model, n, threads)
				b.Run(name, func(b *testing.B) {
					if model != "tiny" && n > 512 {
						loraSkipLong(b)
					}
					m := loraBenchModel(b, model)
					// Beyond 512 tokens of a real-sized model, recompute activations per layer.
					recompute := model != "tiny" && n > 512
					e := lora.NewCPU(m, lora.Options{Threads: threads, Recompute: recompute})
					ad, err := lora.NewAdapter(m.Cfg, lora.AdapterOptions{Rank: 16, Alpha: 32, Seed: 1})
					if err != nil {
						b.Fatal(err)
					}
					for _, p := range ad.Pairs { // non-zero B so that every LoRA term does real work
						for i := range p.B {
							p.B[i] = 0.01
						}
					}
					if err := e.SetAdapter(ad); err != nil {
						b.Fatal(err)
					}
					batch, w := loraSeqBatch(m.Cfg, n)
					flops, err := e.FLOPs(batch, true)
					if err != nil {
						b.Fatal(err)
					}
					est, _ := e.MemoryEstimate(batch)
					runtime.GC()
					b.ResetTimer()
					stop := loraPeakHeap()
					cpu0 := cpuSeconds()
					for range b.N {
						if _, err := e.Backward(batch, w); err != nil {
							b.Fatal(err)
						}
					}
					cpu := (cpuSeconds() - cpu0) / float64(b.N)
					peak := stop()
					b.StopTimer()
					sec := b.Elapsed().Seconds() / float64(b.N)
					// The reference: sgemm of the FFN's shape at the same thread count, same run.
					lora.SetThreads(threads)
					const reps = 5
					sm, sn, sk := n, m.Cfg.NFF, m.Cfg.NEmbd
					c0 := cpuSeconds()
					ref := lora.MeasureSgemm(sm, sn, sk, reps)
					refCPU := reps * 2 * float64(sm) * float64(sn) * float64(sk) / (cpuSeconds() - c0) / 1e9
					got, gotCPU := float64(flops)/sec/1e9, float64(flops)/cpu/1e9
					b.ReportMetric(float64(n)/sec, "tokens/s")
					b.ReportMetric(got, "GFLOP/s")
					b.ReportMetric(ref, "sgemm_GFLOP/s")
					b.ReportMetric(got/ref, "ratio")
					b.ReportMetric(gotCPU/refCPU, "ratio_cpu")
					b.ReportMetric(float64(peak)/(1<<20), "peak_heap_MiB")
					b.ReportMetric(float64(est)/(1<<20), "estimate_MiB")
				})
			}
		}
	}
}

// BenchmarkLoRAGroup compares a GRPO group computed with its prompt once (the engine's packed
// layout: completions attend to the shared prompt K/V) against each sequence run alone.
//
//	./scripts/go test ./bench/ -run '^$' -bench LoRAGroup -benchtime 1x
func BenchmarkLoRAGroup(b *testing.B) {
	loraSkipLong(b)
	const g = 4
	m := loraBenchModel(b, "qwen2.5-0.5b")
	batch, w := loraGroupBatch(m.Cfg, 384, g, 32)
	threads := runtime.NumCPU()
	e := lora.NewCPU(m, lora.Options{Threads: threads})
	ad, _ := lora.NewAdapter(m.Cfg, lora.AdapterOptions{Rank: 16, Alpha: 32, Seed: 1})
	e.SetAdapter(ad)
	for _, mode := range []string{"shared-prompt", "separate"} {
		b.Run(mode, func(b *testing.B) {
			tokens := 0
			for range b.N {
				if mode == "shared-prompt" {
					res, err := e.Backward(batch, w)
					if err != nil {
						b.Fatal(err)
					}
					tokens += res.Tokens
					continue
				}
				for s := range batch.Seqs {
					res, err := e.Backward(&lora.Batch{Seqs: batch.Seqs[s : s+1]}, w[s:s+1])
					if err != nil {
						b.Fatal(err)
					}
					tokens += res.Tokens
				}
			}
			b.ReportMetric(float64(g*b.N)/b.Elapsed().Seconds(), "sequences/s")
			b.ReportMetric(float64(tokens)/float64(b.N), "rows_computed")
		})
	}
}

// loraGroupBatch is a GRPO group: g completions of `completion` random tokens after one random
// prompt, the completions scored with weights of mixed sign.
func loraGroupBatch(c lora.Config, prompt, g, completion int) (*lora.Batch, [][]float32) {
	r := rand.New(rand.NewPCG(2, 2))
	p := make([]int32, prompt)
	for i := range p {
		p[i] = int32(r.IntN(c.NVocab))
	}
	batch := &lora.Batch{}
	var w [][]float32
	for range g {
		s := lora.Sequence{Tokens: append([]int32(nil), p...), Mask: make([]bool, prompt+completion)}
		ws := make([]float32, prompt+completion)
		for i := prompt; i < prompt+completion; i++ {
			s.Tokens = append(s.Tokens, int32(r.IntN(c.NVocab)))
			s.Mask[i] = true
			ws[i] = float32(r.NormFloat64())
		}
		batch.Seqs = append(batch.Seqs, s)
		w = append(w, ws)
	}
	return batch, w
}

// BenchmarkLoRAScoreAndBackward compares the trainer's two ways to get log pi_theta and the
// gradient of a loss whose weights need it: LogProbs then Backward (two forwards through the
// blocks) against BackwardWeighed (one forward; the head runs twice), alternated in one run on a
// GRPO group with Qwen2.5-0.5B's dimensions. speedup = two-pass time / one-forward time.
//
//	./scripts/go test ./bench/ -run '^$' -bench LoRAScoreAndBackward -benchtime 2x -timeout 60m
func BenchmarkLoRAScoreAndBackward(b *testing.B) {
	loraSkipLong(b)
	m := loraBenchModel(b, "qwen2.5-0.5b")
	batch, w := loraGroupBatch(m.Cfg, 384, 4, 32)
	e := lora.NewCPU(m, lora.Options{Threads: runtime.NumCPU()})
	ad, _ := lora.NewAdapter(m.Cfg, lora.AdapterOptions{Rank: 16, Alpha: 32, Seed: 1})
	if err := e.SetAdapter(ad); err != nil {
		b.Fatal(err)
	}
	weigh := func([][]float32) ([][]float32, error) { return w, nil }
	var twoPass, oneForward time.Duration
	for range b.N {
		t0 := time.Now()
		if _, err := e.LogProbs(batch); err != nil {
			b.Fatal(err)
		}
		if _, err := e.Backward(batch, w); err != nil {
			b.Fatal(err)
		}
		twoPass += time.Since(t0)
		t0 = time.Now()
		if _, err := e.BackwardWeighed(batch, weigh); err != nil {
			b.Fatal(err)
		}
		oneForward += time.Since(t0)
	}
	b.ReportMetric(twoPass.Seconds()/float64(b.N), "two_pass_s")
	b.ReportMetric(oneForward.Seconds()/float64(b.N), "one_forward_s")
	b.ReportMetric(twoPass.Seconds()/oneForward.Seconds(), "speedup")
}
