package data

import (
	"encoding/binary"
	"testing"
)

// FuzzJPEGOrientation: any bytes give an orientation in 1..8 and never a panic (a photo's EXIF
// block is untrusted input).
func FuzzJPEGOrientation(f *testing.F) {
	jpg := []byte{0xFF, 0xD8, 0xFF, 0xD9}
	f.Add(jpg)
	f.Add(withEXIF(jpg, 6, binary.BigEndian))
	f.Add(withEXIF(jpg, 8, binary.LittleEndian))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x02})
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF, 'E', 'x', 'i', 'f', 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if o := jpegOrientation(b); o < 1 || o > 8 {
			t.Fatalf("orientation %d", o)
		}
	})
}
