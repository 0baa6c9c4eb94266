package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
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
