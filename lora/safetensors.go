package lora

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"github.com/vzlocal/vzlocal/internal/atomicfile"
)

// A plain-Go safetensors reader/writer (the format PEFT saves adapters in): an 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__":
// {string: string}}, then the raw little-endian tensor bytes.

type stTensor struct {
	Name  string
	Shape []int
	Data  []float32
}

type stEntry struct {
	DType   string   `json:"dtype"`
	Shape   []int    `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// writeSafetensors writes float32 tensors as F32, atomically.
func writeSafetensors(path string, ts []stTensor, meta map[string]string) error {
	header := map[string]any{}
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	slices.SortFunc(ts, func(a, b stTensor) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	const size, dtype = int64(4), "F32"
	var off int64
	for _, t := range ts {
		n := int64(len(t.Data)) * size
		header[t.Name] = stEntry{DType: dtype, Shape: t.Shape, Offsets: [2]int64{off, off + n}}
		off += n
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	for len(hj)%8 != 0 { // pad with spaces so tensor data starts 8-byte aligned
		hj = append(hj, ' ')
	}
	return atomicfile.Create(path, func(f *os.File) error {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(hj)))
		if _, err := f.Write(n[:]); err != nil {
			return err
		}
		if _, err := f.Write(hj); err != nil {
			return err
		}
		for _, t := range ts {
			buf := make([]byte, int64(len(t.Data))*size)
			for i, v := range t.Data {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
			if _, err := f.Write(buf); err != nil {
				return err
			}
		}
		return nil
	})
}

// readSafetensors reads every tensor (F32, F16 or BF16) as float32.
func readSafetensors(path string) (map[string]stTensor, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read safetensors: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("read safetensors %s: %w", path, err)
	}
	var n [8]byte
	if _, err := io.ReadFull(f, n[:]); err != nil {
		return nil, nil, fmt.Errorf("read safetensors %s: header length: %w", path, err)
	}
	hl := binary.LittleEndian.Uint64(n[:])
	if hl > uint64(st.Size())-8 || hl > 100<<20 {
		return nil, nil, fmt.Errorf("read safetensors %s: header length %d exceeds the file (%d bytes)", path, hl, st.Size())
	}
	hj := make([]byte, hl)
	if _, err := io.ReadFull(f, hj); err != nil {
		return nil, nil, fmt.Errorf("read safetensors %s: header: %w", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hj, &raw); err != nil {
		return nil, nil, fmt.Errorf("read safetensors %s: header JSON: %w", path, err)
	}
	dataStart := int64(8 + hl)
	dataLen := st.Size() - dataStart
	meta := map[string]string{}
	out := map[string]stTensor{}
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &meta); err != nil {
				return nil, nil, fmt.Errorf("read safetensors %s: __metadata__: %w", path, err)
			}
			continue
		}
		var e stEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, nil, fmt.Errorf("read safetensors %s: tensor %s: %w", path, name, err)
		}
		var size int64
		var kind uint32
		switch e.DType {
		case "F32":
			size, kind = 4, TypeF32
		case "F16":
			size, kind = 2, TypeF16
		case "BF16":
			size, kind = 2, TypeBF16
		default:
			return nil, nil, fmt.Errorf("read safetensors %s: tensor %s: dtype %s not supported (F32, F16, BF16)", path, name, e.DType)
		}
		numel := int64(1)
		for _, d := range e.Shape {
			if d < 0 {
				return nil, nil, fmt.Errorf("read safetensors %s: tensor %s: negative dimension in %v", path, name, e.Shape)
			}
			numel *= int64(d)
		}
		b, end := e.Offsets[0], e.Offsets[1]
		if b < 0 || end < b || end > dataLen || end-b != numel*size {
			return nil, nil, fmt.Errorf("read safetensors %s: tensor %s: data_offsets %v do not hold %v %s values in %d data bytes", path, name, e.Offsets, e.Shape, e.DType, dataLen)
		}
		buf := make([]byte, end-b)
		if _, err := f.ReadAt(buf, dataStart+b); err != nil {
			return nil, nil, fmt.Errorf("read safetensors %s: tensor %s: %w", path, name, err)
		}
		vals := make([]float32, numel)
		if err := dequantize(kind, buf, vals); err != nil {
			return nil, nil, fmt.Errorf("read safetensors %s: tensor %s: %w", path, name, err)
		}
		out[name] = stTensor{Name: name, Shape: e.Shape, Data: vals}
	}
	return out, meta, nil
}
