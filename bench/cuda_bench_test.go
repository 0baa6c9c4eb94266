package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vzlocal/vzlocal/lora"
	"github.com/vzlocal/vzlocal/lora/cuda"
)

// The CUDA gradient engine's benchmark (GPU machine; skipped elsewhere). Its twin for PyTorch +
// PEFT is bench/peft_bench.py: same model dimensions, same LoRA targets and rank, same sequence
// lengths, random weights, so that both run side by side in one GPU session.
//
//	go test -c -o bin/bench.test ./bench/   (here), then on the GPU machine:
//	VZLOCAL_CUDA_LIB=bin/libvzlocal_cuda.so bin/bench.test -test.run '^$' -test.bench CUDABackward -test.benchtime 1x
//
// MFU counts model FLOPs of a frozen base with LoRA: 4 x (matrix parameters, the head included)
// x tokens (2 for the forward, 2 for the input gradients of the backward), plus attention:
// 3 x the causal forward's 4 x n_head x head_dim x (visible query-key pairs), per layer. The
// recomputed forward and the LoRA products are not counted (as in PaLM's MFU). The peak is
// bf16 dense: 989 TFLOP/s for H100/H200 SXM, or $VZLOCAL_PEAK_TFLOPS.

// cudaSizes are Qwen2.5's dimensions (every size has q/k/v biases; 7B has an untied head).
var cudaSizes = []struct {
	name string
	cfg  lora.Config
}{
	{"qwen2.5-0.5b", lora.Config{Arch: "qwen2", NLayer: 24, NEmbd: 896, NHead: 14, NHeadKV: 2, HeadDim: 64, NFF: 4864, NVocab: 151936, TiedOutput: true}},
	{"qwen2.5-3b", lora.Config{Arch: "qwen2", NLayer: 36, NEmbd: 2048, NHead: 16, NHeadKV: 2, HeadDim: 128, NFF: 11008, NVocab: 151936, TiedOutput: true}},
	{"qwen2.5-7b", lora.Config{Arch: "qwen2", NLayer: 28, NEmbd: 3584, NHead: 28, NHeadKV: 4, HeadDim: 128, NFF: 18944, NVocab: 152064}},
}

func cudaConfig(c lora.Config) lora.Config {
	c.NCtx, c.NRot, c.RMSEps, c.RopeBase, c.RopeScale, c.Rope, c.HasQKVBias = 32768, c.HeadDim, 1e-6, 1e6, 1, lora.RopeNeox, true
	return c
}

// cudaRandomModel builds a model with random weights quickly: one layer's tensors are drawn and
// shared by every layer on the host (the GPU gets its own copy of each layer; the speed does not
// depend on the values). Uniform values with the usual 1/sqrt(fan-in) scale.
func cudaRandomModel(c lora.Config, seed uint64) *lora.Model {
	r := rand.New(rand.NewPCG(seed, 7))
	fill := func(n int, scale float32) []float32 {
		w := make([]float32, n)
		for i := range w {
			w[i] = (2*r.Float32() - 1) * scale
		}
		return w
	}
	ones := func(n int) []float32 {
		w := make([]float32, n)
		for i := range w {
			w[i] = 1
		}
		return w
	}
	E, F, V := c.NEmbd, c.NFF, c.NVocab
	q, kv := c.NHead*c.HeadDim, c.NHeadKV*c.HeadDim
	s := func(in int) float32 { return float32(1.7 / math.Sqrt(float64(in))) }
	l := lora.Layer{AttnNorm: ones(E), FFNNorm: ones(E), Wq: fill(q*E, s(E)), Wk: fill(kv*E, s(E)), Wv: fill(kv*E, s(E)),
		Wo: fill(E*q, s(q)), Wgate: fill(F*E, s(E)), Wup: fill(F*E, s(E)), Wdown: fill(E*F, s(F)),
		Bq: fill(q, 0.1), Bk: fill(kv, 0.1), Bv: fill(kv, 0.1)}
	m := &lora.Model{Cfg: c, TokEmbd: fill(V*E, 1), OutNorm: ones(E), Layers: make([]lora.Layer, c.NLayer)}
	for i := range m.Layers {
		m.Layers[i] = l
	}
	m.Output = m.TokEmbd
	if !c.TiedOutput {
		m.Output = fill(V*E, s(E))
	}
	return m
}

// cudaModelFLOPs is the MFU numerator of one forward+backward over a packed layout of segments.
func cudaModelFLOPs(c lora.Config, tokens int, segs [][2]int) float64 {
	q, kv := c.NHead*c.HeadDim, c.NHeadKV*c.HeadDim
	params := float64(c.NLayer)*float64(c.NEmbd*(q+2*kv)+q*c.NEmbd+3*c.NEmbd*c.NFF) + float64(c.NVocab*c.NEmbd)
	var pairs float64 // visible (query, key) pairs
	for _, s := range segs {
		m, p := float64(s[0]), float64(s[1])
		pairs += m*p + m*(m+1)/2
	}
	attn := 3 * 4 * float64(c.NHead*c.HeadDim) * pairs * float64(c.NLayer)
	return 4*params*float64(tokens) + attn
}

func cudaPeak(dev string) float64 {
	if v, err := strconv.ParseFloat(os.Getenv("VZLOCAL_PEAK_TFLOPS"), 64); err == nil && v > 0 {
		return v * 1e12
	}
	if strings.Contains(dev, "H100") || strings.Contains(dev, "H200") {
		return 989.4e12
	}
	return 0
}

// cudaWorkload is one benchmark input: a single scored sequence of n tokens, or a GRPO group
// (g completions of c tokens after a p-token prompt, the completions scored).
func cudaWorkload(c lora.Config, kind string, n, g, p, comp int) (*lora.Batch, [][]float32, int, [][2]int) {
	r := rand.New(rand.NewPCG(3, 3))
	if kind == "seq" {
		s := lora.Sequence{Tokens: make([]int32, n)}
		w := make([]float32, n)
		for i := range s.Tokens {
			s.Tokens[i] = int32(r.IntN(c.NVocab))
			w[i] = float32(r.NormFloat64())
		}
		w[0] = 0
		return &lora.Batch{Seqs: []lora.Sequence{s}}, [][]float32{w}, n, [][2]int{{n, 0}}
	}
	prompt := make([]int32, p)
	for i := range prompt {
		prompt[i] = int32(r.IntN(c.NVocab))
	}
	b := &lora.Batch{Temperature: 1}
	var w [][]float32
	segs := [][2]int{{p, 0}}
	for s := 0; s < g; s++ {
		seq := lora.Sequence{Tokens: append([]int32(nil), prompt...), Mask: make([]bool, p+comp)}
		ws := make([]float32, p+comp)
		seq.Tokens = append(seq.Tokens, int32(s)) // distinct first completion token: the prefix is the prompt
		for i := p + 1; i < p+comp; i++ {
			seq.Tokens = append(seq.Tokens, int32(r.IntN(c.NVocab)))
		}
		for i := p; i < p+comp; i++ {
			seq.Mask[i], ws[i] = true, float32(r.NormFloat64())
		}
		b.Seqs = append(b.Seqs, seq)
		w = append(w, ws)
		segs = append(segs, [2]int{comp, p})
	}
	return b, w, p + g*comp, segs
}

// BenchmarkCUDABackward: forward+backward tokens/s, MFU and peak device memory of the CUDA engine
// (bf16, LoRA rank 16 alpha 32 on all seven targets, recomputation per layer) for Qwen2.5
// 0.5B/3B/7B dimensions at sequence lengths 1024 and 4096, and a GRPO group of 8 x 512
// completions after a 1,024-token prompt.
func BenchmarkCUDABackward(b *testing.B) {
	if ok, msg := cuda.Available(); !ok {
		b.Skipf("needs libvzlocal_cuda.so and a GPU: %s", msg)
	}
	only := os.Getenv("VZLOCAL_BENCH_SIZES")                       // e.g. "qwen2.5-0.5b,qwen2.5-7b"
	attns, err := benchAttentions(os.Getenv("VZLOCAL_BENCH_ATTN")) // e.g. "flash"; both by default
	if err != nil {
		b.Fatal(err)
	}
	keeps, err := benchKeeps(os.Getenv("VZLOCAL_BENCH_KEEP")) // e.g. "0,-1"; 0 by default
	if err != nil {
		b.Fatal(err)
	}
	folds, err := benchSwitch("VZLOCAL_BENCH_FOLD", "1") // e.g. "0,1"
	if err != nil {
		b.Fatal(err)
	}
	pfs, err := benchSwitch("VZLOCAL_BENCH_FLASH_PF", "0") // e.g. "0,1"
	if err != nil {
		b.Fatal(err)
	}
	for _, sz := range cudaSizes {
		if only != "" && !strings.Contains(only, sz.name) {
			continue
		}
		c := cudaConfig(sz.cfg)
		var m *lora.Model
		for _, wl := range []struct {
			name               string
			kind               string
			n, g, p, completed int
		}{{"seq=1024", "seq", 1024, 0, 0, 0}, {"seq=4096", "seq", 4096, 0, 0, 0}, {"group=8x512+1024", "group", 0, 8, 1024, 512}} {
			for _, v := range benchVariants(attns, keeps, folds, pfs) {
				attn, keep := v.attn, v.keep
				b.Run(sz.name+"/"+wl.name+"/"+v.name, func(b *testing.B) {
					b.Setenv("VZLOCAL_CUDA_FOLD", v.fold) // read when the engine is created
					b.Setenv("VZLOCAL_CUDA_FLASH_PREFETCH", v.pf)
					// A fresh engine per workload, so that its peak memory is this workload's alone.
					t0 := time.Now()
					if m == nil {
						m = cudaRandomModel(c, 1)
					}
					e, err := cuda.Open(m, cuda.Options{Precision: cuda.BF16, Attention: attn, KeepLayers: keep})
					if err != nil {
						b.Fatal(err)
					}
					defer e.Close()
					b.Logf("%s: model built and uploaded in %v", sz.name, time.Since(t0))
					ad, err := lora.NewAdapter(c, lora.AdapterOptions{Rank: 16, Alpha: 32, Seed: 1})
					if err != nil {
						b.Fatal(err)
					}
					for _, p := range ad.Pairs {
						for i := range p.B {
							p.B[i] = 0.01
						}
					}
					if err := e.SetAdapter(ad); err != nil {
						b.Fatal(err)
					}
					batch, w, tokens, segs := cudaWorkload(c, wl.kind, wl.n, wl.g, wl.p, wl.completed)
					sec := cudaStepTime(b, e, ad, batch, w)
					flops := cudaModelFLOPs(c, tokens, segs)
					mem := e.Memory()
					dev, _ := cuda.Probe()
					b.ReportMetric(float64(tokens)/sec, "tokens/s")
					b.ReportMetric(flops/sec/1e12, "TFLOP/s")
					if pk := cudaPeak(dev.Name); pk > 0 {
						b.ReportMetric(100*flops/sec/pk, "MFU_%")
					}
					b.ReportMetric(float64(mem.Peak)/(1<<30), "peak_GiB")
					b.ReportMetric(float64(mem.Weights)/(1<<30), "weights_GiB")
					b.ReportMetric(float64(dev.Total-dev.Free)/(1<<30), "device_used_GiB")
					fmt.Printf("cuda\t%s\t%s\t%s\ttokens=%d\t%.3f s\t%.0f tok/s\t%.1f TFLOP/s\tpeak %.2f GiB\n",
						sz.name, wl.name, v.name, tokens, sec, float64(tokens)/sec, flops/sec/1e12, float64(mem.Peak)/(1<<30))
				})
			}
		}
	}
}

// benchKeeps reads VZLOCAL_BENCH_KEEP: comma-separated Options.KeepLayers values (default 0).
func benchKeeps(s string) ([]int, error) {
	if s == "" {
		return []int{0}, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < -1 {
			return nil, fmt.Errorf("VZLOCAL_BENCH_KEEP: %q: want -1 or a count >= 0", f)
		}
		out = append(out, k)
	}
	return out, nil
}

// benchSwitch reads a comma-separated list of 0/1 from the variable name (def alone when unset):
// VZLOCAL_BENCH_FOLD, whether the LoRA products run inside the base GEMMs (the engine's
// VZLOCAL_CUDA_FOLD; default 1), VZLOCAL_BENCH_FLASH_PF, whether the flash backward loads the next
// query tile ahead (VZLOCAL_CUDA_FLASH_PREFETCH; default 0).
func benchSwitch(name, def string) ([]string, error) {
	s := os.Getenv(name)
	if s == "" {
		return []string{def}, nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f != "0" && f != "1" {
			return nil, fmt.Errorf("%s: %q: want 0 or 1", name, f)
		}
		out = append(out, f)
	}
	return out, nil
}

type benchVariant struct {
	name string
	attn cuda.Attention
	keep int
	fold string // VZLOCAL_CUDA_FOLD for the engine
	pf   string // VZLOCAL_CUDA_FLASH_PREFETCH (flash only)
}

func benchVariants(attns []cuda.Attention, keeps []int, folds, pfs []string) []benchVariant {
	var out []benchVariant
	for _, a := range attns {
		for _, k := range keeps {
			for _, f := range folds {
				for i, pf := range pfs {
					name := fmt.Sprintf("attn=%s,keep=%d,fold=%s", a, k, f)
					if a == cuda.AttnFlash {
						name += ",pf=" + pf
					} else if i > 0 {
						continue // the GEMM attention has no flash backward
					}
					out = append(out, benchVariant{name, a, k, f, pf})
				}
			}
		}
	}
	return out
}

// benchAttentions reads VZLOCAL_BENCH_ATTN ("gemm", "flash" or both, comma-separated); empty means
// both, so that one run reports their ratio.
func benchAttentions(s string) ([]cuda.Attention, error) {
	if s == "" {
		s = "gemm,flash"
	}
	var out []cuda.Attention
	for _, name := range strings.Split(s, ",") {
		a, err := cuda.ParseAttention(strings.TrimSpace(name))
		if err != nil {
			return nil, fmt.Errorf("VZLOCAL_BENCH_ATTN: %w", err)
		}
		out = append(out, a)
	}
	return out, nil
}

func cudaMedian(x []float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkCUDAQuantized7B: the memory target, a 7B GRPO step (8 completions of 512
// tokens after a 1,024-token prompt) within 16 GB of GPU memory, with the layer matrices kept as
// Q4_K_M-like blocks on the GPU (Q4_K, Q6_K for attn_v and ffn_down) and dequantized per layer:
// cuda.OpenFile, which also keeps no fp32 copy of the matrices on the host. The model is a random
// GGUF of Qwen2.5-7B's dimensions written to a temporary folder (about 6 GB).
//
//	bin/bench.test -test.run '^$' -test.bench CUDAQuantized7B -test.benchtime 1x
func BenchmarkCUDAQuantized7B(b *testing.B) {
	if ok, msg := cuda.Available(); !ok {
		b.Skipf("needs libvzlocal_cuda.so and a GPU: %s", msg)
	}
	c := cudaConfig(cudaSizes[2].cfg)
	path := b.TempDir() + "/qwen2.5-7b-q4km-random.gguf"
	t0 := time.Now()
	types := []uint32{cuda.TypeQ4_K, cuda.TypeQ4_K, cuda.TypeQ6_K, cuda.TypeQ4_K, cuda.TypeQ4_K, cuda.TypeQ4_K, cuda.TypeQ6_K}
	if err := cuda.WriteRandomGGUF(path, c, types, 1, nil); err != nil {
		b.Fatal(err)
	}
	b.Logf("random Q4_K_M-like 7B written in %v", time.Since(t0))
	attns, err := benchAttentions(os.Getenv("VZLOCAL_BENCH_ATTN"))
	if err != nil {
		b.Fatal(err)
	}
	for _, attn := range attns {
		b.Run("attn="+attn.String(), func(b *testing.B) { benchQuantized(b, path, c, attn) })
	}
}

// cudaStepTime is the median seconds of 3 x b.N backward passes after a warm-up (workspace,
// cuBLAS heuristics), each through the trainer's call: the gradient added into one buffer.
func cudaStepTime(b *testing.B, e *cuda.Engine, ad *lora.Adapter, batch *lora.Batch, w [][]float32) float64 {
	b.Helper()
	grads := ad.ZeroLike()
	if _, err := e.BackwardInto(batch, w, grads); err != nil {
		b.Fatal(err)
	}
	const reps = 3
	times := make([]float64, 0, reps*b.N)
	b.ResetTimer()
	for range b.N {
		for range reps {
			t0 := time.Now()
			if _, err := e.BackwardInto(batch, w, grads); err != nil {
				b.Fatal(err)
			}
			times = append(times, time.Since(t0).Seconds())
		}
	}
	b.StopTimer()
	return cudaMedian(times)
}

func benchQuantized(b *testing.B, path string, c lora.Config, attn cuda.Attention) {
	e, err := cuda.OpenFile(path, cuda.Options{Precision: cuda.BF16, Attention: attn})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	ad, err := lora.NewAdapter(c, lora.AdapterOptions{Rank: 16, Alpha: 32, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	if err := e.SetAdapter(ad); err != nil {
		b.Fatal(err)
	}
	batch, w, tokens, segs := cudaWorkload(c, "group", 0, 8, 1024, 512)
	sec := cudaStepTime(b, e, ad, batch, w)
	mem := e.Memory()
	dev, _ := cuda.Probe()
	used := float64(dev.Total-dev.Free) / (1 << 30)
	b.ReportMetric(float64(tokens)/sec, "tokens/s")
	b.ReportMetric(cudaModelFLOPs(c, tokens, segs)/sec/1e12, "TFLOP/s")
	b.ReportMetric(float64(mem.Peak)/(1<<30), "peak_GiB")
	b.ReportMetric(float64(mem.Weights)/(1<<30), "weights_GiB")
	b.ReportMetric(used, "device_used_GiB")
	fits := 0.0
	if used <= 16e9/(1<<30) {
		fits = 1
	}
	b.ReportMetric(fits, "fits_16GB")
	fmt.Printf("cuda-q4km\tqwen2.5-7b\tgroup=8x512+1024\tattn=%s\t%.3f s\tpeak %.2f GiB\tdevice used %.2f GiB\n", attn, sec, float64(mem.Peak)/(1<<30), used)
}
