package lora

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestGoReferenceDequantMatchesGgml: ggml_quantize_chunk output dequantized by ggml's to_float and by
// the pure-Go reference must agree bit for bit.
func TestGoReferenceDequantMatchesGgml(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const rows, perRow = 8, 512
	src := make([]float32, rows*perRow)
	for i := range src {
		src[i] = float32(r.NormFloat64() * 0.02)
	}
	for _, typ := range []uint32{TypeQ4_0, TypeQ8_0, TypeQ4_K, TypeQ6_K} {
		t.Run(typeName(typ), func(t *testing.T) {
			q, err := quantize(typ, src, rows, perRow)
			if err != nil {
				t.Fatal(err)
			}
			ggmlOut, goOut := make([]float32, len(src)), make([]float32, len(src))
			if err := dequantize(typ, q, ggmlOut); err != nil {
				t.Fatal(err)
			}
			if err := dequantizeRef(typ, q, goOut); err != nil {
				t.Fatal(err)
			}
			var se, ss float64
			for i := range ggmlOut {
				if math.Float32bits(ggmlOut[i]) != math.Float32bits(goOut[i]) {
					t.Fatalf("element %d: ggml %g, Go reference %g", i, ggmlOut[i], goOut[i])
				}
				se += float64(goOut[i]-src[i]) * float64(goOut[i]-src[i])
				ss += float64(src[i]) * float64(src[i])
			}
			if rel := math.Sqrt(se / ss); rel > 0.15 { // not vacuous: the values are the data's
				t.Fatalf("round-trip relative RMS error %g", rel)
			}
		})
	}
}

// TestLoaderDequantizesQuantizedModels writes a model whose matrices are stored as each supported
// type (quantized by ggml_quantize_chunk), loads it, and requires every loaded weight to equal
// ggml's dequantization of the stored bytes exactly, and to be within the type's expected error of
// the original weights (so a loader that read the wrong type or offset would fail).
func TestLoaderDequantizesQuantizedModels(t *testing.T) {
	c := tinyConfig("qwen2")
	c.NEmbd, c.NHead, c.NHeadKV, c.HeadDim, c.NRot, c.NFF = 256, 4, 2, 64, 64, 512
	m := RandomModel(c, 7)
	for _, tc := range []struct {
		typ    uint32
		maxRel float64 // relative RMS error of the round trip
	}{{TypeF16, 1e-3}, {TypeBF16, 5e-3}, {TypeQ8_0, 1e-2}, {TypeQ4_0, 0.15}, {TypeQ4_K, 0.1}, {TypeQ5_K, 0.05}, {TypeQ6_K, 0.03}} {
		t.Run(typeName(tc.typ), func(t *testing.T) {
			path := tempPath(t, "model.gguf")
			writeModelGGUF(t, path, m, tc.typ)
			got, err := LoadModel(path)
			if err != nil {
				t.Fatal(err)
			}
			check := func(name string, want, have []float32, in int) {
				q, err := quantize(tc.typ, want, len(want)/in, in)
				if err != nil {
					t.Fatal(err)
				}
				ref := make([]float32, len(want))
				if err := dequantize(tc.typ, q, ref); err != nil {
					t.Fatal(err)
				}
				var se, ss float64
				for i := range ref {
					if math.Float32bits(ref[i]) != math.Float32bits(have[i]) {
						t.Fatalf("%s[%d]: loaded %g, ggml dequantized %g", name, i, have[i], ref[i])
					}
					d := float64(have[i] - want[i])
					se += d * d
					ss += float64(want[i]) * float64(want[i])
				}
				if rel := math.Sqrt(se / ss); rel > tc.maxRel || rel == 0 {
					t.Fatalf("%s: relative RMS error %g, want (0, %g]", name, rel, tc.maxRel)
				}
			}
			check("token_embd", m.TokEmbd, got.TokEmbd, c.NEmbd)
			for il := range m.Layers {
				for _, tg := range Targets {
					in, _, _ := c.LinearShape(tg)
					check(fmt.Sprintf("blk.%d.%s", il, tg), m.weight(il, tg), got.weight(il, tg), in)
				}
				if !slicesEqual(m.Layers[il].Bq, got.Layers[il].Bq) || !slicesEqual(m.Layers[il].FFNNorm, got.Layers[il].FFNNorm) {
					t.Fatalf("layer %d: F32 vectors changed on load", il)
				}
			}
		})
	}
}

func slicesEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
