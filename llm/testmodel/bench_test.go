package testmodel

import (
	"io"
	"testing"
)

// BenchmarkTensorData measures weight generation without disk: one 896x4864 matrix (a Qwen2.5-0.5B
// FFN weight) per iteration.
func BenchmarkTensorData(b *testing.B) {
	for _, kind := range []tensorKind{kindF32, kindF16, kindQ80} {
		b.Run(map[tensorKind]string{kindF32: "f32", kindF16: "f16", kindQ80: "q8_0"}[kind], func(b *testing.B) {
			spec := weight("blk.0.ffn_up.weight", 896, 4864)
			b.SetBytes(896 * 4864)
			for b.Loop() {
				d := tensorData{spec: spec, kind: kind, seed: 1}
				if _, err := d.WriteTo(io.Discard); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
