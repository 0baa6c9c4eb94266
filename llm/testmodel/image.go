package testmodel

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
)

// TestImage returns a deterministic w x h RGB PNG: a colour gradient with a seeded pattern on top, so
// that different seeds give different embeddings. Non-positive sizes are clamped to 1.
func TestImage(w, h int, seed int64) []byte {
	w, h = max(w, 1), max(h, 1)
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	rng := wyrand{state: splitmix64(uint64(seed))}
	for y := range h {
		for x := range w {
			n := rng.next()
			img.SetNRGBA(x, y, color.NRGBA{
				R: uint8(x*255/max(w-1, 1)) ^ uint8(n&0x3f),
				G: uint8(y*255/max(h-1, 1)) ^ uint8(n>>8&0x3f),
				B: uint8((x+y)*4) ^ uint8(n>>16&0x3f),
				A: 255,
			})
		}
	}
	var buf bytes.Buffer
	// Encoding an in-memory NRGBA image cannot fail.
	_ = png.Encode(&buf, img)
	return buf.Bytes()
}
