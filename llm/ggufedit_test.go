package llm

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"os"
	"testing"

	"github.com/ollama/ollama/fs/ggml"
	"github.com/stretchr/testify/require"
)

// ggufFile is a whole GGUF in memory, for tests that craft bad or derived files (LoRA adapters,
// merged models) from the tiny model.
type ggufFile struct {
	kv      ggml.KV
	tensors []*tensorBytes
}

type tensorBytes struct {
	name  string
	kind  uint32
	shape []uint64
	data  []byte
}

func readGGUF(t testing.TB, path string) *ggufFile {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	g, err := ggml.Decode(f, -1)
	require.NoError(t, err)
	out := &ggufFile{kv: g.KV()}
	delete(out.kv, "general.parameter_count") // added by Decode
	for _, ti := range g.Tensors().Items() {
		data := make([]byte, ti.Size())
		_, err := f.ReadAt(data, int64(g.Tensors().Offset+ti.Offset))
		require.NoError(t, err)
		out.tensors = append(out.tensors, &tensorBytes{name: ti.Name, kind: ti.Kind, shape: ti.Shape, data: data})
	}
	return out
}

func (g *ggufFile) write(t testing.TB, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	var ts []*ggml.Tensor
	for _, tb := range g.tensors {
		ts = append(ts, &ggml.Tensor{Name: tb.name, Kind: tb.kind, Shape: tb.shape, WriterTo: bytes.NewReader(tb.data)})
	}
	require.NoError(t, ggml.WriteGGUF(f, g.kv, ts))
}

func (g *ggufFile) tensor(name string) *tensorBytes {
	for _, tb := range g.tensors {
		if tb.name == name {
			return tb
		}
	}
	return nil
}

func (g *ggufFile) without(name string) *ggufFile {
	out := &ggufFile{kv: ggml.KV{}}
	for k, v := range g.kv {
		out.kv[k] = v
	}
	for _, tb := range g.tensors {
		if tb.name != name {
			out.tensors = append(out.tensors, tb)
		}
	}
	return out
}

// clone copies the KV map (tensor data is shared; replace tensors rather than edit them).
func (g *ggufFile) clone() *ggufFile { return g.without("") }

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func (tb *tensorBytes) f32(t testing.TB) []float32 {
	t.Helper()
	require.Equal(t, uint32(0), tb.kind, "tensor %s is not F32", tb.name)
	out := make([]float32, len(tb.data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(tb.data[4*i:]))
	}
	return out
}

var _ io.WriterTo = (*bytes.Reader)(nil)
