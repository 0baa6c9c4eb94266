package lora

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/vzlocal/vzlocal/internal/atomicfile"

	"github.com/ollama/ollama/fs/ggml"
	"github.com/x448/float16"
)

// The GGUF LoRA format llama.cpp reads (llama-adapter.cpp; spec llama-cpp-notes.md §2):
//   general.type = "adapter", adapter.type = "lora", general.architecture = the base model's arch,
//   adapter.lora.alpha as FLOAT32 (any other type aborts llama.cpp);
//   per adapted base tensor X: X.lora_a with ne=[in, rank] and X.lora_b with ne=[rank, out],
//   i.e. row-major A [rank][in] and B [out][rank], the same layout as PEFT's lora_A/lora_B.

// floatsWriter writes float32 values as F32 or F16 tensor data.
type floatsWriter struct {
	v    []float32
	kind uint32
}

func (w floatsWriter) WriteTo(out io.Writer) (int64, error) {
	var buf []byte
	switch w.kind {
	case TypeF32:
		buf = make([]byte, 4*len(w.v))
		for i, x := range w.v {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(x))
		}
	case TypeF16:
		buf = make([]byte, 2*len(w.v))
		for i, x := range w.v {
			binary.LittleEndian.PutUint16(buf[2*i:], float16.Fromfloat32(x).Bits())
		}
	default:
		return 0, fmt.Errorf("unsupported adapter tensor type %s", typeName(w.kind))
	}
	n, err := out.Write(buf)
	return int64(n), err
}

// WriteGGUF writes the adapter as a llama.cpp LoRA GGUF, atomically. kind is TypeF32 or TypeF16.
func (a *Adapter) WriteGGUF(path string, kind uint32) error {
	if kind != TypeF32 && kind != TypeF16 {
		return fmt.Errorf("write adapter %s: type %s not supported (f32, f16)", path, typeName(kind))
	}
	if a.Rank <= 0 || len(a.Pairs) == 0 {
		return fmt.Errorf("write adapter %s: empty adapter", path)
	}
	kv := ggml.KV{
		"general.architecture": a.Arch,
		"general.type":         "adapter",
		"general.name":         "vzlocal",
		"adapter.type":         "lora",
		"adapter.lora.alpha":   float32(a.Alpha),
	}
	var ts []*ggml.Tensor
	for _, p := range a.Pairs {
		ts = append(ts,
			&ggml.Tensor{Name: p.Name + ".lora_a", Kind: kind, Shape: []uint64{uint64(p.In), uint64(a.Rank)}, WriterTo: floatsWriter{p.A, kind}},
			&ggml.Tensor{Name: p.Name + ".lora_b", Kind: kind, Shape: []uint64{uint64(a.Rank), uint64(p.Out)}, WriterTo: floatsWriter{p.B, kind}},
		)
	}
	return atomicfile.Create(path, func(f *os.File) error { return ggml.WriteGGUF(f, kv, ts) })
}

// ReadAdapterGGUF reads a llama.cpp LoRA GGUF and checks it against the model config.
func ReadAdapterGGUF(path string, cfg Config) (*Adapter, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read adapter: %w", err)
	}
	defer f.Close()
	g, err := ggml.Decode(f, -1)
	if err != nil {
		return nil, fmt.Errorf("read adapter %s: %w", path, err)
	}
	kv := g.KV()
	// Raw map lookups: ggml.KV's getters would prefix "adapter.*" keys with the architecture.
	if t, _ := kv["general.type"].(string); t != "adapter" {
		return nil, fmt.Errorf("read adapter %s: general.type is %q, want \"adapter\"", path, t)
	}
	if t, _ := kv["adapter.type"].(string); t != "lora" {
		return nil, fmt.Errorf("read adapter %s: adapter.type is %q, want \"lora\"", path, t)
	}
	arch, _ := kv["general.architecture"].(string)
	if arch != cfg.Arch {
		return nil, fmt.Errorf("read adapter %s: adapter is for architecture %q, model is %q", path, arch, cfg.Arch)
	}
	// Absent, alpha is 0 for llama.cpp (scale 1: Adapter.Scale); any type but float32 aborts it.
	var alpha float32
	if v, present := kv["adapter.lora.alpha"]; present {
		a, ok := v.(float32)
		if !ok {
			return nil, fmt.Errorf("read adapter %s: adapter.lora.alpha is %T, want float32", path, v)
		}
		alpha = a
	}

	type half struct{ a, b *ggml.Tensor }
	halves := map[string]*half{}
	for _, t := range g.Tensors().Items() {
		base, suffix, found := strings.Cut(t.Name, ".weight.lora_")
		if !found || (suffix != "a" && suffix != "b") {
			return nil, fmt.Errorf("read adapter %s: unexpected tensor %s", path, t.Name)
		}
		h := halves[base]
		if h == nil {
			h = &half{}
			halves[base] = h
		}
		if suffix == "a" {
			h.a = t
		} else {
			h.b = t
		}
	}
	if len(halves) == 0 {
		return nil, fmt.Errorf("read adapter %s: no LoRA tensors", path)
	}
	ad := &Adapter{Arch: arch, Alpha: alpha}
	for base, h := range halves {
		name := base + ".weight"
		if h.a == nil || h.b == nil {
			return nil, fmt.Errorf("read adapter %s: tensor %s lacks lora_a or lora_b", path, name)
		}
		var il int
		var target string
		if n, _ := fmt.Sscanf(base, "blk.%d.", &il); n != 1 {
			return nil, fmt.Errorf("read adapter %s: tensor %s is not a decoder block weight (only blk.N.* targets are supported)", path, name)
		}
		target = strings.TrimPrefix(base, fmt.Sprintf("blk.%d.", il))
		if !slices.Contains(Targets, target) {
			return nil, fmt.Errorf("read adapter %s: tensor %s: target module %q is not supported (%s)", path, name, target, strings.Join(Targets, ", "))
		}
		if len(h.a.Shape) != 2 || len(h.b.Shape) != 2 {
			return nil, fmt.Errorf("read adapter %s: tensor %s: lora_a/lora_b must be 2-D", path, name)
		}
		in, rank, rankB, out := int(h.a.Shape[0]), int(h.a.Shape[1]), int(h.b.Shape[0]), int(h.b.Shape[1])
		if rank != rankB {
			return nil, fmt.Errorf("read adapter %s: tensor %s: lora_a rank %d != lora_b rank %d", path, name, rank, rankB)
		}
		if ad.Rank == 0 {
			ad.Rank = rank
		} else if ad.Rank != rank {
			return nil, fmt.Errorf("read adapter %s: tensor %s has rank %d, others %d", path, name, rank, ad.Rank)
		}
		p := &Pair{Name: name, Layer: il, Target: target, In: in, Out: out}
		if p.A, err = readTensorFloats(f, g.Tensors().Offset, h.a); err != nil {
			return nil, fmt.Errorf("read adapter %s: %w", path, err)
		}
		if p.B, err = readTensorFloats(f, g.Tensors().Offset, h.b); err != nil {
			return nil, fmt.Errorf("read adapter %s: %w", path, err)
		}
		ad.Pairs = append(ad.Pairs, p)
		if !slices.Contains(ad.Targets, target) {
			ad.Targets = append(ad.Targets, target)
		}
	}
	ad.sortPairs()
	if err := ad.CheckModel(cfg); err != nil {
		return nil, fmt.Errorf("read adapter %s: %w", path, err)
	}
	return ad, nil
}

// sortPairs orders pairs and targets canonically (layer, then Targets order).
func (a *Adapter) sortPairs() {
	slices.SortFunc(a.Pairs, func(x, y *Pair) int {
		if x.Layer != y.Layer {
			return x.Layer - y.Layer
		}
		return slices.Index(Targets, x.Target) - slices.Index(Targets, y.Target)
	})
	slices.SortFunc(a.Targets, func(x, y string) int { return slices.Index(Targets, x) - slices.Index(Targets, y) })
	a.reindex()
}

// readTensorFloats reads a float tensor (F32, F16, BF16) from a GGUF file.
func readTensorFloats(f *os.File, dataOffset uint64, t *ggml.Tensor) ([]float32, error) {
	if t.Kind != TypeF32 && t.Kind != TypeF16 && t.Kind != TypeBF16 {
		return nil, fmt.Errorf("tensor %s: type %s not supported (f32, f16, bf16)", t.Name, typeName(t.Kind))
	}
	buf := make([]byte, t.Size())
	if _, err := f.ReadAt(buf, int64(dataOffset+t.Offset)); err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	out := make([]float32, t.Elements())
	if err := dequantize(t.Kind, buf, out); err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	return out, nil
}
