package export

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"strings"

	"github.com/vzlocal/vzlocal/internal/ggmlquant"
)

// GGUF value types (gguf.h).
const (
	ggufUint8 uint32 = iota
	ggufInt8
	ggufUint16
	ggufInt16
	ggufUint32
	ggufInt32
	ggufFloat32
	ggufBool
	ggufString
	ggufArray
	ggufUint64
	ggufInt64
	ggufFloat64
)

// ggufScalarSize is the byte size of each fixed-size GGUF value type.
var ggufScalarSize = map[uint32]int64{
	ggufUint8: 1, ggufInt8: 1, ggufUint16: 2, ggufInt16: 2, ggufUint32: 4, ggufInt32: 4,
	ggufFloat32: 4, ggufBool: 1, ggufUint64: 8, ggufInt64: 8, ggufFloat64: 8,
}

// kvEntry is one GGUF key-value pair kept as its encoded bytes, so that a copy writes back
// exactly what the base file holds (Ollama's fs/ggml writer knows fewer types and prefixes keys).
type kvEntry struct {
	Key   string
	Type  uint32
	Raw   []byte // the encoded value, without key and type
	Value any    // decoded value for scalars, strings and arrays of strings; nil for other arrays
}

// tensorInfo is one entry of a GGUF tensor table.
type tensorInfo struct {
	Name   string
	Shape  []uint64 // ggml ne order
	Type   uint32
	Offset uint64 // relative to the start of the data section
}

// Elements is the number of values in the tensor.
func (t tensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Bytes is the size of the tensor's data.
func (t tensorInfo) Bytes() int64 {
	if len(t.Shape) == 0 {
		return 0
	}
	rows := int64(t.Elements() / t.Shape[0])
	return rows * ggmlquant.RowBytes(t.Type, int64(t.Shape[0]))
}

// ggufFile is the parsed header of a GGUF file: its key-values, tensor table and where the data
// section starts. Tensor data is read on demand.
type ggufFile struct {
	Path       string
	Version    uint32
	KVs        []kvEntry
	Tensors    []tensorInfo
	Alignment  uint64
	DataOffset int64
	Size       int64
}

// maxGGUFString bounds string and array lengths so that a corrupt file gives an error, not an
// attempt to allocate terabytes.
const maxGGUFString = 1 << 30

var errNotGGUF = errors.New("not a GGUF file")

// readGGUF parses the header of the GGUF file at path.
func readGGUF(path string) (*ggufFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	g, err := parseGGUF(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	g.Path, g.Size = path, st.Size()
	for _, t := range g.Tensors {
		if !ggmlquant.Known(t.Type) {
			return nil, fmt.Errorf("%s: tensor %s has unknown type %d", path, t.Name, t.Type)
		}
		if len(t.Shape) == 0 || t.Shape[0]%uint64(ggmlquant.BlockSize(t.Type)) != 0 {
			return nil, fmt.Errorf("%s: tensor %s: shape %v does not fit %s blocks", path, t.Name, t.Shape, ggmlquant.TypeName(t.Type))
		}
		// Sizes are checked before Bytes() divides by ne[0] or a product wraps: a corrupt table
		// must give an error, not a panic or a negative allocation.
		if !sizeFits(t, g.Size) {
			return nil, fmt.Errorf("%s: tensor %s: shape %v at offset %d cannot fit in a %d-byte file (corrupt tensor table)", path, t.Name, t.Shape, t.Offset, g.Size)
		}
		if end := g.DataOffset + int64(t.Offset) + t.Bytes(); end > g.Size {
			return nil, fmt.Errorf("%s: tensor %s ends at byte %d, past the end of the file (%d bytes; truncated?)", path, t.Name, end, g.Size)
		}
	}
	return g, nil
}

// sizeFits reports whether every dimension of t is positive and its element count, byte size and
// offset are each at most size, computed without overflow.
func sizeFits(t tensorInfo, size int64) bool {
	n := uint64(1)
	for _, d := range t.Shape {
		hi, lo := bits.Mul64(n, d)
		if d == 0 || hi != 0 || lo > 8*uint64(size) { // no ggml type stores a value in under one bit
			return false
		}
		n = lo
	}
	rows := n / t.Shape[0]
	rowBytes := ggmlquant.RowBytes(t.Type, int64(t.Shape[0]))
	hi, b := bits.Mul64(rows, uint64(rowBytes))
	return rowBytes > 0 && hi == 0 && b <= uint64(size) && t.Offset <= uint64(size)
}

// countingReader tracks the offset so the data section start can be computed while streaming.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func parseGGUF(r io.Reader) (*ggufFile, error) {
	cr := &countingReader{r: r}
	var hdr struct {
		Magic   [4]byte
		Version uint32
	}
	if err := binary.Read(cr, binary.LittleEndian, &hdr); err != nil {
		return nil, fmt.Errorf("%w: %v", errNotGGUF, err)
	}
	if string(hdr.Magic[:]) != "GGUF" {
		return nil, errNotGGUF
	}
	if hdr.Version < 2 || hdr.Version > 3 {
		return nil, fmt.Errorf("GGUF version %d is not supported (want 2 or 3)", hdr.Version)
	}
	var counts struct{ Tensors, KVs uint64 }
	if err := binary.Read(cr, binary.LittleEndian, &counts); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if counts.Tensors > 1<<24 || counts.KVs > 1<<24 {
		return nil, fmt.Errorf("header claims %d tensors and %d keys: corrupt", counts.Tensors, counts.KVs)
	}
	g := &ggufFile{Version: hdr.Version, Alignment: 32}
	for i := uint64(0); i < counts.KVs; i++ {
		kv, err := readKV(cr)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if kv.Key == "general.alignment" {
			a, ok := kv.Value.(uint32)
			if !ok || a == 0 || a&(a-1) != 0 {
				return nil, fmt.Errorf("general.alignment %v is not a power of two (uint32)", kv.Value)
			}
			g.Alignment = uint64(a)
		}
		g.KVs = append(g.KVs, kv)
	}
	for i := uint64(0); i < counts.Tensors; i++ {
		var t tensorInfo
		var err error
		if t.Name, err = readString(cr); err != nil {
			return nil, fmt.Errorf("tensor %d name: %w", i, err)
		}
		var nd uint32
		if err := binary.Read(cr, binary.LittleEndian, &nd); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		if nd == 0 || nd > 4 {
			return nil, fmt.Errorf("tensor %s has %d dimensions", t.Name, nd)
		}
		t.Shape = make([]uint64, nd)
		if err := binary.Read(cr, binary.LittleEndian, t.Shape); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		if err := binary.Read(cr, binary.LittleEndian, &t.Type); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		if err := binary.Read(cr, binary.LittleEndian, &t.Offset); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		g.Tensors = append(g.Tensors, t)
	}
	g.DataOffset = align(cr.n, int64(g.Alignment))
	return g, nil
}

// skipString reads past one string without keeping it.
func skipString(r io.Reader) error {
	var n uint64
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
		return err
	}
	if n > maxGGUFString {
		return fmt.Errorf("string of %d bytes: corrupt", n)
	}
	if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

func readString(r io.Reader) (string, error) {
	var n uint64
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
		return "", err
	}
	if n > maxGGUFString {
		return "", fmt.Errorf("string of %d bytes: corrupt", n)
	}
	if n <= 1<<16 {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", err
		}
		return string(b), nil
	}
	// A long string (a chat template, a merged vocabulary) grows as its bytes arrive, so that a
	// corrupt length fails on the missing bytes instead of allocating up to 1 GiB first.
	var sb strings.Builder
	if _, err := io.CopyN(&sb, r, int64(n)); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	return sb.String(), nil
}

// readKV reads one key-value pair, keeping the raw value bytes.
func readKV(r io.Reader) (kvEntry, error) {
	var kv kvEntry
	var err error
	if kv.Key, err = readString(r); err != nil {
		return kv, err
	}
	if err := binary.Read(r, binary.LittleEndian, &kv.Type); err != nil {
		return kv, fmt.Errorf("%s: %w", kv.Key, err)
	}
	rec := &recordingReader{r: r}
	if kv.Value, err = readValue(rec, kv.Type); err != nil {
		return kv, fmt.Errorf("%s: %w", kv.Key, err)
	}
	kv.Raw = rec.buf
	return kv, nil
}

// recordingReader keeps a copy of everything read through it.
type recordingReader struct {
	r   io.Reader
	buf []byte
}

func (rr *recordingReader) Read(p []byte) (int, error) {
	n, err := rr.r.Read(p)
	rr.buf = append(rr.buf, p[:n]...)
	return n, err
}

// readValue decodes one value of type t. Arrays of strings decode to []string; arrays of other
// element types are skipped and give nil.
func readValue(r io.Reader, t uint32) (any, error) {
	le := binary.LittleEndian
	switch t {
	case ggufString:
		return readString(r)
	case ggufArray:
		var et uint32
		var n uint64
		if err := binary.Read(r, le, &et); err != nil {
			return nil, err
		}
		if err := binary.Read(r, le, &n); err != nil {
			return nil, err
		}
		if n > maxGGUFString {
			return nil, fmt.Errorf("array of %d values: corrupt", n)
		}
		switch {
		case et == ggufString:
			// Nothing reads string arrays (vocabulary, merges) as values: the merged writer copies
			// their raw bytes. Skip each string, still bounded so a corrupt length is an error.
			for i := uint64(0); i < n; i++ {
				if err := skipString(r); err != nil {
					return nil, fmt.Errorf("string %d of %d: %w", i, n, err)
				}
			}
			return nil, nil
		case et == ggufArray:
			// llama.cpp refuses arrays of arrays ("invalid GGUF type"); following them would
			// also recurse once per 12 bytes of a corrupt file, until the stack overflows.
			return nil, errors.New("array of arrays: not a valid GGUF value")
		default:
			size, ok := ggufScalarSize[et]
			if !ok {
				return nil, fmt.Errorf("array of unknown type %d", et)
			}
			if _, err := io.CopyN(io.Discard, r, size*int64(n)); err != nil {
				return nil, err
			}
			return nil, nil
		}
	}
	size, ok := ggufScalarSize[t]
	if !ok {
		return nil, fmt.Errorf("unknown value type %d", t)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	switch t {
	case ggufUint8:
		return b[0], nil
	case ggufInt8:
		return int8(b[0]), nil
	case ggufUint16:
		return le.Uint16(b), nil
	case ggufInt16:
		return int16(le.Uint16(b)), nil
	case ggufUint32:
		return le.Uint32(b), nil
	case ggufInt32:
		return int32(le.Uint32(b)), nil
	case ggufFloat32:
		return math.Float32frombits(le.Uint32(b)), nil
	case ggufBool:
		return b[0] != 0, nil
	case ggufUint64:
		return le.Uint64(b), nil
	case ggufInt64:
		return int64(le.Uint64(b)), nil
	default: // ggufFloat64
		return math.Float64frombits(le.Uint64(b)), nil
	}
}

// String returns the string value of key, or "".
func (g *ggufFile) String(key string) string {
	for _, kv := range g.KVs {
		if kv.Key == key {
			s, _ := kv.Value.(string)
			return s
		}
	}
	return ""
}

// Uint returns an unsigned integer value of key.
func (g *ggufFile) Uint(key string) (uint64, bool) {
	for _, kv := range g.KVs {
		if kv.Key == key {
			switch v := kv.Value.(type) {
			case uint8:
				return uint64(v), true
			case uint16:
				return uint64(v), true
			case uint32:
				return uint64(v), true
			case uint64:
				return v, true
			case int32:
				if v >= 0 {
					return uint64(v), true
				}
			}
		}
	}
	return 0, false
}

// Tensor finds a tensor by name.
func (g *ggufFile) Tensor(name string) (tensorInfo, bool) {
	for _, t := range g.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return tensorInfo{}, false
}

// Arch is general.architecture.
func (g *ggufFile) Arch() string { return g.String("general.architecture") }

// readTensor reads a tensor's raw bytes.
func (g *ggufFile) readTensor(f io.ReaderAt, t tensorInfo) ([]byte, error) {
	b := make([]byte, t.Bytes())
	if _, err := f.ReadAt(b, g.DataOffset+int64(t.Offset)); err != nil {
		return nil, fmt.Errorf("%s: tensor %s: %w", g.Path, t.Name, err)
	}
	return b, nil
}

func align(n, a int64) int64 { return (n + a - 1) / a * a }

// ggufWriter writes a GGUF v3 file: the header (with KVs given as raw entries), the tensor table,
// then the tensor data in table order, each padded to the alignment.
type ggufWriter struct {
	w         io.Writer
	n         int64
	alignment int64
	err       error
}

func (w *ggufWriter) write(p []byte) {
	if w.err != nil {
		return
	}
	n, err := w.w.Write(p)
	w.n += int64(n)
	w.err = err
}

func (w *ggufWriter) u32(v uint32) { w.write(binary.LittleEndian.AppendUint32(nil, v)) }
func (w *ggufWriter) u64(v uint64) { w.write(binary.LittleEndian.AppendUint64(nil, v)) }
func (w *ggufWriter) str(s string) { w.u64(uint64(len(s))); w.write([]byte(s)) }

func (w *ggufWriter) pad() {
	if p := align(w.n, w.alignment) - w.n; p > 0 {
		w.write(make([]byte, p))
	}
}

// header writes everything before the tensor data and assigns each tensor its offset.
func (w *ggufWriter) header(kvs []kvEntry, tensors []tensorInfo) {
	w.write([]byte("GGUF"))
	w.u32(3)
	w.u64(uint64(len(tensors)))
	w.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		w.str(kv.Key)
		w.u32(kv.Type)
		w.write(kv.Raw)
	}
	var off uint64
	for i := range tensors {
		tensors[i].Offset = off
		w.str(tensors[i].Name)
		w.u32(uint32(len(tensors[i].Shape)))
		for _, d := range tensors[i].Shape {
			w.u64(d)
		}
		w.u32(tensors[i].Type)
		w.u64(off)
		off += uint64(align(tensors[i].Bytes(), w.alignment))
	}
	w.pad()
}

// tensor writes one tensor's data followed by its padding.
func (w *ggufWriter) tensor(data []byte) {
	w.write(data)
	w.pad()
}

// rawKV encodes a value as a kvEntry (for the few keys the merged writer changes).
func rawKV(key string, v any) kvEntry {
	le := binary.LittleEndian
	switch v := v.(type) {
	case uint32:
		return kvEntry{Key: key, Type: ggufUint32, Raw: le.AppendUint32(nil, v), Value: v}
	case float32:
		return kvEntry{Key: key, Type: ggufFloat32, Raw: le.AppendUint32(nil, math.Float32bits(v)), Value: v}
	case string:
		return kvEntry{Key: key, Type: ggufString, Raw: append(le.AppendUint64(nil, uint64(len(v))), v...), Value: v}
	}
	panic(fmt.Sprintf("rawKV: unsupported type %T", v))
}
