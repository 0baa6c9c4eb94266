package cuda

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/vzlocal/vzlocal/lora"
)

// The quantized-resident path (Options.GGUF): layer matrices stay as ggml blocks on the GPU and
// are dequantized per layer. The fixture is a llama GGUF whose matrices are random but valid
// Q8_0, Q4_K, Q6_K and F16 blocks; lora.LoadModel dequantizes them with ggml's own to_float for
// the CPU reference.

// quantTypes gives each target a ggml type (lora.Targets order).
var quantTypes = []uint32{8, 12, 14, 1, 12, 8, 14} // q: Q8_0, k: Q4_K, v: Q6_K, o: F16, gate: Q4_K, up: Q8_0, down: Q6_K

func quantConfig() lora.Config {
	return lora.Config{Arch: "llama", NLayer: 4, NEmbd: 256, NHead: 4, NHeadKV: 2, HeadDim: 64, NFF: 512, NVocab: 300,
		NCtx: 512, NRot: 64, RMSEps: 1e-5, RopeBase: 10000, RopeScale: 1, Rope: lora.RopeNorm}
}

// quantCase is the quantized fixture's file, its fully loaded model, an adapter, a GRPO-shaped
// batch and the CPU reference's backward on them.
func quantCase(t *testing.T) (path string, m *lora.Model, ad *lora.Adapter, b *lora.Batch, w [][]float32, ref *lora.Result) {
	t.Helper()
	path = writeQuantGGUF(t)
	m, err := lora.LoadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	ad = randomAdapter(t, m.Cfg, 4, 5)
	b, w = groupBatch(m.Cfg, 3, 10, 6, 4)
	return path, m, ad, b, w, cpuBackward(t, m, ad, b, w, 2)
}

// writeQuantGGUF writes the fixture and returns its path.
func writeQuantGGUF(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "quant.gguf")
	if err := WriteRandomGGUF(path, quantConfig(), quantTypes, 9, nil); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestQuantFixture (no GPU): the fixture loads through lora's own loader with sane values.
func TestQuantFixture(t *testing.T) {
	m, err := lora.LoadModel(writeQuantGGUF(t))
	if err != nil {
		t.Fatal(err)
	}
	for k, w := range [][]float32{m.Layers[0].Wq, m.Layers[0].Wk, m.Layers[0].Wv, m.Layers[0].Wo, m.Layers[0].Wgate, m.Layers[0].Wup, m.Layers[0].Wdown} {
		var ss float64
		for _, v := range w {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s: non-finite value", lora.Targets[k])
			}
			ss += float64(v) * float64(v)
		}
		rms := math.Sqrt(ss / float64(len(w)))
		t.Logf("%s (type %d): rms %.3g", lora.Targets[k], quantTypes[k], rms)
		if rms < 1e-3 || rms > 1 {
			t.Errorf("%s: rms %.3g outside [1e-3, 1]", lora.Targets[k], rms)
		}
	}
}

// TestQuantizedParity: with the matrices resident as ggml blocks, the engine matches (a) itself
// with the same matrices uploaded dequantized by ggml on the host, to 1e-6 in F32 (the GPU's
// dequantization keeps ggml's float32 operation order, so it should be exact), and (b) the CPU
// reference within the usual tolerances, in both precisions.
func TestQuantizedParity(t *testing.T) {
	needGPU(t)
	path, m, ad, b, w, ref := quantCase(t)
	for _, prec := range []Precision{F32, BF16} {
		t.Run(prec.String(), func(t *testing.T) {
			run := func(gguf string) (*lora.Result, Memory) {
				res, mem, _ := backwardOn(t, m, Options{Precision: prec, GGUF: gguf}, ad, b, w)
				return res, mem
			}
			q, qm := run(path)
			d, dm := run("")
			t.Logf("weights on the GPU: %.2f MiB quantized (with the per-layer scratch), %.2f MiB dequantized", mb(qm.Weights), mb(dm.Weights))
			_, same := relErr(flat2(q.LogProbs), flat2(d.LogProbs))
			var gsame float64
			for i := range q.Grads.Pairs {
				_, a := relErr(q.Grads.Pairs[i].A, d.Grads.Pairs[i].A)
				_, b := relErr(q.Grads.Pairs[i].B, d.Grads.Pairs[i].B)
				gsame = math.Max(gsame, math.Max(a, b))
			}
			t.Logf("quantized vs dequantized upload: log-probs max|diff| %.3g, gradients max|diff| %.3g", same, gsame)
			if prec == F32 && !(same <= 1e-6 && gsame <= 1e-6) {
				t.Errorf("GPU dequantization differs from ggml's: %.3g / %.3g", same, gsame)
			}
			tol := tolerances["tiny"][prec]
			rel, mx := relErr(flat2(q.LogProbs), flat2(ref.LogProbs))
			worst := 0.0
			for i, p := range ref.Grads.Pairs {
				ra, _ := relErr(q.Grads.Pairs[i].A, p.A)
				rb, _ := relErr(q.Grads.Pairs[i].B, p.B)
				worst = math.Max(worst, math.Max(ra, rb))
			}
			t.Logf("vs CPU: log-probs rel %.3g max %.3g, worst gradient rel %.3g", rel, mx, worst)
			if !(rel <= tol.lpRel) || !(worst <= tol.grad) || (prec == F32 && !(mx <= tol.lpMaxAbs)) {
				t.Errorf("quantized path differs from the CPU reference beyond tolerance")
			}
			if !(qm.Weights < dm.Weights) {
				t.Errorf("quantized weights (%d bytes) not smaller than dequantized (%d)", qm.Weights, dm.Weights)
			}
		})
	}
}

// TestLightModel (no GPU): OpenFile's host model reads the same configuration, norms and biases
// as lora.LoadModel, and no matrix.
func TestLightModel(t *testing.T) {
	for _, arch := range []string{"llama", "qwen2"} {
		c := quantConfig()
		if arch == "qwen2" {
			c.Arch, c.Rope, c.HasQKVBias, c.TiedOutput = "qwen2", lora.RopeNeox, true, true
		}
		path := filepath.Join(t.TempDir(), arch+".gguf")
		if err := WriteRandomGGUF(path, c, quantTypes, 4, nil); err != nil {
			t.Fatal(err)
		}
		ref, err := lora.LoadModel(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := openGGUF(path)
		if err != nil {
			t.Fatal(err)
		}
		m, err := f.lightModel()
		f.close()
		if err != nil {
			t.Fatal(err)
		}
		if m.Cfg.Arch != ref.Cfg.Arch || m.Cfg.NLayer != ref.Cfg.NLayer || m.Cfg.NVocab != ref.Cfg.NVocab ||
			m.Cfg.TiedOutput != ref.Cfg.TiedOutput || m.Cfg.HasQKVBias != ref.Cfg.HasQKVBias || m.Cfg.RopeBase != ref.Cfg.RopeBase {
			t.Fatalf("%s: config %+v, LoadModel %+v", arch, m.Cfg, ref.Cfg)
		}
		for il := range m.Layers {
			a, b := m.Layers[il], ref.Layers[il]
			for _, p := range [][2][]float32{{a.AttnNorm, b.AttnNorm}, {a.FFNNorm, b.FFNNorm}, {a.Bq, b.Bq}, {a.Bk, b.Bk}, {a.Bv, b.Bv}, {m.OutNorm, ref.OutNorm}} {
				if _, mx := relErr(p[0], p[1]); mx != 0 || len(p[0]) != len(p[1]) {
					t.Fatalf("%s layer %d: a vector differs from LoadModel's", arch, il)
				}
			}
			if a.Wq != nil || a.Wdown != nil {
				t.Fatalf("%s: the light model holds matrices", arch)
			}
		}
	}
}

// TestOpenFile: the engine opened straight from the GGUF (matrices and head as blocks, token
// embedding expanded on the GPU) matches the CPU reference on the fully loaded model.
func TestOpenFile(t *testing.T) {
	needGPU(t)
	path, m, ad, b, w, ref := quantCase(t)
	e, err := OpenFile(path, Options{Precision: F32})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, mx := relErr(e.m.TokEmbd, m.TokEmbd); mx != 0 {
		t.Errorf("token embedding expanded on the GPU differs from ggml's by %g", mx)
	}
	if err := e.SetAdapter(ad); err != nil {
		t.Fatal(err)
	}
	res, err := e.Backward(b, w)
	if err != nil {
		t.Fatal(err)
	}
	tol := tolerances["tiny"][F32]
	_, mx := relErr(flat2(res.LogProbs), flat2(ref.LogProbs))
	worst := 0.0
	for i, p := range ref.Grads.Pairs {
		ra, _ := relErr(res.Grads.Pairs[i].A, p.A)
		rb, _ := relErr(res.Grads.Pairs[i].B, p.B)
		worst = math.Max(worst, math.Max(ra, rb))
	}
	t.Logf("OpenFile vs CPU: log-probs max|diff| %.3g, worst gradient rel %.3g; GPU weights %.2f MiB", mx, worst, mb(e.Memory().Weights))
	if !(mx <= tol.lpMaxAbs) || !(worst <= tol.grad) {
		t.Errorf("OpenFile differs from the CPU reference beyond tolerance")
	}
}
