package export

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// ggufBytes builds a GGUF v3 file by hand: one uint32 key, the given tensors (name, ne, type,
// offset), and dataBytes zero bytes of tensor data after the 32-byte aligned header.
type rawTensor struct {
	name   string
	shape  []uint64
	typ    uint32
	offset uint64
}

func ggufBytes(tensors []rawTensor, dataBytes int) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	w := func(v any) { binary.Write(&b, le, v) }
	str := func(s string) { w(uint64(len(s))); b.WriteString(s) }
	b.WriteString("GGUF")
	w(uint32(3))
	w(uint64(len(tensors)))
	w(uint64(1))
	str("general.architecture")
	w(ggufString)
	str("llama")
	for _, t := range tensors {
		str(t.name)
		w(uint32(len(t.shape)))
		w(t.shape)
		w(t.typ)
		w(t.offset)
	}
	for b.Len()%32 != 0 {
		b.WriteByte(0)
	}
	b.Write(make([]byte, dataBytes))
	return b.Bytes()
}

// oneKeyHeader starts a GGUF v3 with no tensors and one key, up to the key's name: the caller
// writes the value type and the value.
func oneKeyHeader(key string) *bytes.Buffer {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("GGUF")
	binary.Write(&b, le, uint32(3))
	binary.Write(&b, le, uint64(0))
	binary.Write(&b, le, uint64(1))
	binary.Write(&b, le, uint64(len(key)))
	b.WriteString(key)
	return &b
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, b, 0o644))
	return p
}

// A tensor table that claims impossible sizes (a zero dimension, a product of dimensions past
// 2^63, an offset past 2^63) is a corrupt file: an error naming the file and tensor, not a panic.
func TestReadGGUFImpossibleTensorSizes(t *testing.T) {
	const f32 = 0
	for name, tt := range map[string]rawTensor{
		"zero first dim":    {"w", []uint64{0, 4}, f32, 0},
		"zero second dim":   {"w", []uint64{4, 0}, f32, 0},
		"elements overflow": {"w", []uint64{4, 1 << 62, 1 << 10}, f32, 0},
		"bytes overflow":    {"w", []uint64{4, 1 << 61}, f32, 0},
		"offset overflow":   {"w", []uint64{4, 4}, f32, 1 << 63},
	} {
		t.Run(name, func(t *testing.T) {
			p := writeTemp(t, "bad.gguf", ggufBytes([]rawTensor{tt}, 64))
			_, err := readGGUF(p)
			require.Error(t, err)
			require.Contains(t, err.Error(), p)
			require.Contains(t, err.Error(), "tensor w")
		})
	}
	// the same file with a sane tensor reads
	p := writeTemp(t, "ok.gguf", ggufBytes([]rawTensor{{"w", []uint64{4, 4}, f32, 0}}, 64))
	g, err := readGGUF(p)
	require.NoError(t, err)
	require.Equal(t, int64(64), g.Tensors[0].Bytes())
}

// A truncated or corrupt key whose length field claims a huge string or string array must fail on
// the missing bytes, without first allocating what the length claims (16 GiB for 2^30 strings).
func TestReadGGUFHugeLengthsDoNotAllocate(t *testing.T) {
	le := binary.LittleEndian
	for name, value := range map[string][]byte{
		"string":       le.AppendUint64(le.AppendUint32(nil, ggufString), 1<<30),
		"string array": le.AppendUint64(le.AppendUint32(le.AppendUint32(nil, ggufArray), ggufString), 1<<30),
	} {
		t.Run(name, func(t *testing.T) {
			b := oneKeyHeader("key")
			b.Write(value)
			b.WriteString("only a few bytes follow")
			p := writeTemp(t, "huge.gguf", b.Bytes())
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := readGGUF(p)
			runtime.ReadMemStats(&after)
			require.Error(t, err)
			require.Contains(t, err.Error(), p)
			require.Contains(t, err.Error(), "key")
			require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<20), "allocated for a length the file cannot hold")
		})
	}
}

// FuzzReadGGUF: any bytes give a parsed header or an error, never a panic; a parsed header's
// tensors all lie inside the file.
func FuzzReadGGUF(f *testing.F) {
	f.Add(ggufBytes([]rawTensor{{"w", []uint64{4, 4}, 0, 0}}, 64))
	f.Add(ggufBytes([]rawTensor{{"a", []uint64{32, 2}, 8, 0}, {"b", []uint64{8}, 1, 96}}, 128))
	f.Add([]byte("GGUF"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "f.gguf")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		g, err := readGGUF(p)
		if err != nil {
			return
		}
		for _, ti := range g.Tensors {
			if n := ti.Bytes(); n < 0 || g.DataOffset+int64(ti.Offset)+n > g.Size {
				t.Fatalf("tensor %s (%v) of %d bytes at %d passes in a %d-byte file", ti.Name, ti.Shape, n, ti.Offset, g.Size)
			}
		}
	})
}

// Arrays of arrays are not GGUF (llama.cpp refuses them); a corrupt file of nested array headers
// is an error naming the key, not a recursion as deep as the file is long.
func TestReadGGUFNestedArrays(t *testing.T) {
	le := binary.LittleEndian
	b := oneKeyHeader("nested")
	binary.Write(b, le, ggufArray)
	for i := 0; i < 1000; i++ {
		binary.Write(b, le, ggufArray)
		binary.Write(b, le, uint64(1))
	}
	binary.Write(b, le, ggufUint8)
	binary.Write(b, le, uint64(1))
	b.WriteByte(7)
	p := writeTemp(t, "nested.gguf", b.Bytes())
	_, err := readGGUF(p)
	require.ErrorContains(t, err, p)
	require.ErrorContains(t, err, "nested: array of arrays")
}
