package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// pngHeaderOnly is a PNG whose IHDR claims w x h RGBA pixels, followed by an empty IDAT and IEND:
// a few dozen bytes that a decoder would answer with a w*h*4-byte allocation.
func pngHeaderOnly(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		c := append([]byte(typ), data...)
		b.Write(c)
		binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(c))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 6, 0, 0, 0) // 8-bit RGBA, no interlace
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c})
	chunk("IEND", nil)
	return b.Bytes()
}

// A file that claims more pixels than a photo has (a decompression bomb, a corrupt header) is
// refused from its header, before the decoder allocates gigabytes for it.
func TestLoadImageRefusesHugeDimensions(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "bomb.png"), pngHeaderOnly(40000, 40000))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := LoadImage(path, ImageLimits{})
	runtime.ReadMemStats(&after)
	require.Error(t, err)
	var se *SourceError
	require.True(t, errors.As(err, &se), "error is a *SourceError: %v", err)
	require.Contains(t, err.Error(), path)
	require.Contains(t, err.Error(), "40000x40000")
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<20), "allocated for pixels the file does not hold")
}

// FuzzLoadImage: any file gives an upright image within the limits or a *SourceError naming the
// file, never a panic (photos are untrusted input; the WebP and GIF decoders are third-party).
func FuzzLoadImage(f *testing.F) {
	var small bytes.Buffer
	require.NoError(f, png.Encode(&small, photo(70, 66, 1)))
	f.Add(small.Bytes())
	var jb bytes.Buffer
	require.NoError(f, jpeg.Encode(&jb, photo(66, 70, 2), &jpeg.Options{Quality: 60}))
	f.Add(withEXIF(jb.Bytes(), 6, binary.BigEndian))
	var gb bytes.Buffer
	require.NoError(f, gif.Encode(&gb, photo(64, 64, 3), nil))
	f.Add(gb.Bytes())
	if webp, err := os.ReadFile("testdata/blue-purple-pink.webp"); err == nil {
		f.Add(webp)
	}
	f.Add(pngHeaderOnly(100, 100))
	path := filepath.Join(f.TempDir(), "photo")
	f.Fuzz(func(t *testing.T, b []byte) {
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(b)); err == nil && cfg.Width*cfg.Height > 1<<20 {
			return // valid but large: slow to decode, and not what this looks for
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		li, err := LoadImage(path, ImageLimits{MaxSide: 256})
		if err != nil {
			var se *SourceError
			if !errors.As(err, &se) || se.Path != path {
				t.Fatalf("error %v is not a *SourceError naming the file", err)
			}
			return
		}
		if s := li.Img.Bounds().Size(); max(s.X, s.Y) > 256 || min(s.X, s.Y) < 1 {
			t.Fatalf("image %v outside the limits", s)
		}
	})
}
