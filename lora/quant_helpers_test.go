package lora

import "github.com/vzlocal/vzlocal/internal/ggmlquant"

// quantize builds quantized test data with ggml's own quantizer.
func quantize(t uint32, src []float32, rows, perRow int) ([]byte, error) {
	return ggmlquant.Quantize(t, src, int64(rows), int64(perRow))
}
