package testmodel

import (
	"encoding/binary"
	"hash/fnv"
	"io"
	"math"
	"math/bits"
	"slices"

	"github.com/ollama/ollama/fs/ggml"
	"github.com/x448/float16"
)

// tensorKind is a GGML tensor type id.
type tensorKind uint32

const (
	kindF32 tensorKind = 0
	kindF16 tensorKind = 1
	kindQ80 tensorKind = 8
)

var weightKinds = map[string]tensorKind{"f32": kindF32, "f16": kindF16, "q8_0": kindQ80}

// fileTypes are the general.file_type values llama.cpp prints for each weight type.
var fileTypes = map[tensorKind]uint32{kindF32: 0, kindF16: 1, kindQ80: 7}

// initStd is the default spread of random weights: small enough that activations stay tame through
// a few layers, large enough that logits clearly vary between tokens.
const initStd = 0.02

// tensorSpec says how one tensor is filled: every element equal to constant when std is 0, otherwise
// bell-shaped random values with standard deviation std (and mean 0).
type tensorSpec struct {
	name     string
	shape    []uint64 // ggml ne order: shape[0] is contiguous
	std      float32
	constant float32
	keepF32  bool // tensors llama.cpp adds or reads as F32 (position/class embeddings)
}

// weight, bias and ones are the three ways tensors are initialised.
func weight(name string, shape ...int) tensorSpec {
	return tensorSpec{name: name, shape: dims(shape), std: initStd}
}
func bias(name string, n int) tensorSpec {
	return tensorSpec{name: name, shape: dims([]int{n}), std: initStd}
}
func ones(name string, n int) tensorSpec {
	return tensorSpec{name: name, shape: dims([]int{n}), constant: 1}
}
func zeros(name string, n int) tensorSpec {
	return tensorSpec{name: name, shape: dims([]int{n})}
}
func f32(t tensorSpec) tensorSpec { t.keepF32 = true; return t }

func dims(s []int) []uint64 {
	out := make([]uint64, len(s))
	for i, v := range s {
		out[i] = uint64(v)
	}
	return out
}

// kindFor picks the stored type of a tensor: 1-D tensors and the keepF32 ones stay F32; F16 applies
// to every other tensor; Q8_0 only to matrices whose rows are whole 32-element blocks (the 4-D conv
// kernels and odd widths stay F32, as verified in tiny-models.md §8).
func kindFor(t tensorSpec, want tensorKind) tensorKind {
	if len(t.shape) < 2 || t.keepF32 {
		return kindF32
	}
	switch want {
	case kindF16:
		return kindF16
	case kindQ80:
		if len(t.shape) == 2 && t.shape[0]%32 == 0 {
			return kindQ80
		}
	}
	return kindF32
}

// ggmlTensors turns specs into tensors for ggml.WriteGGUF. Each tensor generates its own data from
// (seed, name) when written, so the writer may write them in any order or in parallel and the bytes
// stay the same.
// A non-zero std replaces the spread of every random tensor.
func ggmlTensors(specs []tensorSpec, seed int64, want tensorKind, std float32) []*ggml.Tensor {
	out := make([]*ggml.Tensor, 0, len(specs))
	for _, s := range specs {
		if s.std != 0 && std != 0 {
			s.std = std
		}
		k := kindFor(s, want)
		out = append(out, &ggml.Tensor{
			Name:     s.name,
			Kind:     uint32(k),
			Shape:    s.shape,
			WriterTo: &tensorData{spec: s, kind: k, seed: tensorSeed(seed, s.name)},
		})
	}
	return out
}

func tensorSeed(seed int64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return splitmix64(uint64(seed) ^ h.Sum64())
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// tensorData streams a tensor's bytes in chunks, so that benchmark-sized tensors (hundreds of MB)
// never sit in memory whole.
type tensorData struct {
	spec tensorSpec
	kind tensorKind
	seed uint64
}

const chunkElems = 1 << 14 // a multiple of the Q8_0 block size

func (d *tensorData) WriteTo(w io.Writer) (int64, error) {
	n := uint64(1)
	for _, s := range d.spec.shape {
		n *= s
	}
	rng := wyrand{state: d.seed}
	vals := make([]float32, chunkElems)
	buf := make([]byte, 0, chunkElems*4)
	var written int64
	for done := uint64(0); done < n; {
		m := min(n-done, chunkElems)
		vals = vals[:m]
		d.fill(vals, &rng)
		buf = encode(buf[:0], vals, d.kind)
		k, err := w.Write(buf)
		written += int64(k)
		if err != nil {
			return written, err
		}
		done += m
	}
	return written, nil
}

func (d *tensorData) fill(vals []float32, rng *wyrand) {
	if d.spec.std == 0 {
		for i := range vals {
			vals[i] = d.spec.constant
		}
		return
	}
	for i := range vals {
		vals[i] = rng.bell() * d.spec.std
	}
}

// encodedSize is the number of bytes n values take in the given type.
func encodedSize(n int, kind tensorKind) int {
	switch kind {
	case kindF16:
		return 2 * n
	case kindQ80:
		return n / 32 * 34
	}
	return 4 * n
}

// encode appends vals in the given type. Q8_0 follows ggml's quantize_row_q8_0_ref: per block of
// 32, d = max|x|/127 stored as f16, then round(x/d) (half away from zero) as int8.
func encode(buf []byte, vals []float32, kind tensorKind) []byte {
	start := len(buf)
	buf = slices.Grow(buf, encodedSize(len(vals), kind))[:start+encodedSize(len(vals), kind)]
	out := buf[start:]
	switch kind {
	case kindF16:
		for i, v := range vals {
			binary.LittleEndian.PutUint16(out[2*i:], float16.Fromfloat32(v).Bits())
		}
	case kindQ80:
		for b := 0; b < len(vals); b += 32 {
			blk := vals[b : b+32 : b+32]
			o := out[b/32*34 : b/32*34+34 : b/32*34+34]
			var amax float32
			for _, v := range blk {
				amax = max(amax, v, -v)
			}
			scale := amax / 127
			var inv float32
			if scale != 0 {
				inv = 1 / scale
			}
			binary.LittleEndian.PutUint16(o, float16.Fromfloat32(scale).Bits())
			for i, v := range blk {
				o[2+i] = byte(int8(math.Round(float64(v * inv))))
			}
		}
	default:
		for i, v := range vals {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
	}
	return buf
}

// wyrand is a tiny fast PRNG (wyhash's wyrand); quality is ample for random weights.
type wyrand struct{ state uint64 }

func (r *wyrand) next() uint64 {
	r.state += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(r.state, r.state^0xe7037ed1a0b428db)
	return hi ^ lo
}

// bell returns an approximately standard-normal value: the sum of four 16-bit uniforms (Irwin-Hall),
// centred and scaled to unit variance. One PRNG call per value keeps big models fast to write.
func (r *wyrand) bell() float32 {
	x := r.next()
	s := float32(x&0xffff) + float32(x>>16&0xffff) + float32(x>>32&0xffff) + float32(x>>48)
	const mean = 2 * 65535.0
	const scale = 1.7320508 / 65536.0 // sqrt(12/4) per unit-variance, in 16-bit units
	return (s - mean) * scale
}
