package export

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vzlocal/vzlocal/internal/ggmlquant"

	"github.com/x448/float16"
)

func TestQuantizeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const rows, perRow = 8, 512
	src := make([]float32, rows*perRow)
	for i := range src {
		src[i] = float32(rng.NormFloat64() * 0.02)
	}
	// Relative RMSE bounds from cgo-notes §1 (measured 2.1e-4, 5.3e-3, 7.1e-2, 1.8e-2) with margin.
	for _, tc := range []struct {
		name   string
		t      uint32
		relErr float64
	}{
		{"f32", ggmlquant.TypeF32, 0},
		{"f16", ggmlquant.TypeF16, 5e-4},
		{"q8_0", ggmlquant.TypeQ8_0, 1e-2},
		{"q4_K", ggmlquant.TypeQ4_K, 1e-1},
		{"q6_K", ggmlquant.TypeQ6_K, 3e-2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := ggmlquant.Quantize(tc.t, src, rows, perRow)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(q)) != rows*ggmlquant.RowBytes(tc.t, perRow) {
				t.Fatalf("%d bytes, want %d", len(q), rows*ggmlquant.RowBytes(tc.t, perRow))
			}
			back := make([]float32, len(src))
			if err := ggmlquant.Dequantize(tc.t, q, back); err != nil {
				t.Fatal(err)
			}
			var se, ss float64
			for i := range src {
				d := float64(back[i] - src[i])
				se += d * d
				ss += float64(src[i]) * float64(src[i])
			}
			if rel := math.Sqrt(se / ss); rel > tc.relErr {
				t.Fatalf("relative RMSE %.3g > %.3g", rel, tc.relErr)
			}
		})
	}
}

func TestQuantizeF16MatchesGo(t *testing.T) {
	src := []float32{0, 1, -2.5, 1e-8, 65504, 0.1, -0.333}
	q, err := ggmlquant.Quantize(ggmlquant.TypeF16, src, 1, int64(len(src)))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range src {
		got := uint16(q[2*i]) | uint16(q[2*i+1])<<8
		if want := float16.Fromfloat32(v).Bits(); got != want {
			t.Errorf("value %d (%g): ggml %#04x, Go %#04x", i, v, got, want)
		}
	}
}

func TestQuantizeRejectsPartialBlocks(t *testing.T) {
	if _, err := ggmlquant.Quantize(ggmlquant.TypeQ4_K, make([]float32, 128), 1, 128); err == nil {
		t.Fatal("q4_K with 128-value rows: want an error")
	}
	if err := ggmlquant.Dequantize(ggmlquant.TypeQ8_0, make([]byte, 10), make([]float32, 32)); err == nil {
		t.Fatal("short q8_0 data: want an error")
	}
}

func TestTypeByName(t *testing.T) {
	for name, want := range map[string]uint32{"q4_k": ggmlquant.TypeQ4_K, "Q8_0": ggmlquant.TypeQ8_0, "f16": ggmlquant.TypeF16, "BF16": ggmlquant.TypeBF16} {
		if got, ok := typeByName(name); !ok || got != want {
			t.Errorf("typeByName(%q) = %d, %v; want %d", name, got, ok, want)
		}
	}
	if _, ok := typeByName("q9"); ok {
		t.Error("q9 accepted")
	}
}
