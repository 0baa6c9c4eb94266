package cuda

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"

	"github.com/ollama/ollama/fs/ggml"
	"github.com/x448/float16"

	"github.com/vzlocal/vzlocal/lora"
)

// GGML types WriteRandomGGUF can write for the layer matrices.
const (
	TypeF16  = lora.TypeF16
	TypeQ8_0 = lora.TypeQ8_0
	TypeQ4_K = lora.TypeQ4_K
	TypeQ6_K = lora.TypeQ6_K
)

// WriteRandomGGUF writes a llama or qwen2 GGUF with the dimensions of c and random weights, its
// layer matrices as random but valid ggml blocks of types[k] (lora.Targets order; for example
// Q4_K with Q6_K for attn_v and ffn_down, as a Q4_K_M file), norms near 1, F16 token embedding
// and head. For tests and benchmarks of the quantized-resident path: lora.LoadModel reads it with
// ggml's own dequantization, and Options.GGUF keeps its blocks on the GPU. extra KVs are added
// to the header: without a tokenizer (tokenizer.* keys, e.g. copied from a testmodel file of the
// same vocabulary size) the file is for the gradient engines only; with one, llama.cpp loads it.
func WriteRandomGGUF(path string, c lora.Config, types []uint32, seed uint64, extra ggml.KV) error {
	if len(types) != len(lora.Targets) {
		return fmt.Errorf("write random gguf: %d types for %d targets", len(types), len(lora.Targets))
	}
	r := rand.New(rand.NewPCG(seed, 9))
	f32 := func(n int, mean, std float64) rawBytes {
		b := make([]byte, 0, 4*n)
		for i := 0; i < n; i++ {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(mean+std*r.NormFloat64())))
		}
		return b
	}
	f16 := func(n int, std float64) rawBytes {
		b := make([]byte, 0, 2*n)
		for i := 0; i < n; i++ {
			b = binary.LittleEndian.AppendUint16(b, float16.Fromfloat32(float32((2*r.Float64()-1)*std)).Bits())
		}
		return b
	}
	a := c.Arch
	kv := ggml.KV{
		"general.architecture": a, "general.name": "vzlocal-random",
		a + ".context_length": uint32(max(c.NCtx, 1)), a + ".embedding_length": uint32(c.NEmbd),
		a + ".block_count": uint32(c.NLayer), a + ".feed_forward_length": uint32(c.NFF),
		a + ".attention.head_count": uint32(c.NHead), a + ".attention.head_count_kv": uint32(c.NHeadKV),
		a + ".attention.layer_norm_rms_epsilon": c.RMSEps, a + ".rope.freq_base": c.RopeBase,
		a + ".rope.dimension_count": uint32(c.NRot), a + ".attention.key_length": uint32(c.HeadDim),
		a + ".attention.value_length": uint32(c.HeadDim),
	}
	for k, v := range extra {
		kv[k] = v
	}
	E, V := uint64(c.NEmbd), uint64(c.NVocab)
	ts := []*ggml.Tensor{
		{Name: "token_embd.weight", Kind: TypeF16, Shape: []uint64{E, V}, WriterTo: f16(c.NEmbd*c.NVocab, 1.7)},
		{Name: "output_norm.weight", Kind: 0, Shape: []uint64{E}, WriterTo: f32(c.NEmbd, 1, 0.1)},
	}
	if !c.TiedOutput {
		ts = append(ts, &ggml.Tensor{Name: "output.weight", Kind: TypeF16, Shape: []uint64{E, V},
			WriterTo: f16(c.NEmbd*c.NVocab, 1.7/math.Sqrt(float64(c.NEmbd)))})
	}
	q, kvd := c.NHead*c.HeadDim, c.NHeadKV*c.HeadDim
	for il := 0; il < c.NLayer; il++ {
		p := fmt.Sprintf("blk.%d.", il)
		ts = append(ts,
			&ggml.Tensor{Name: p + "attn_norm.weight", Kind: 0, Shape: []uint64{E}, WriterTo: f32(c.NEmbd, 1, 0.1)},
			&ggml.Tensor{Name: p + "ffn_norm.weight", Kind: 0, Shape: []uint64{E}, WriterTo: f32(c.NEmbd, 1, 0.1)})
		for k, tg := range lora.Targets {
			in, out, _ := c.LinearShape(tg)
			b, err := randomBlocks(r, types[k], out, in)
			if err != nil {
				return fmt.Errorf("write random gguf: %s: %w", tg, err)
			}
			ts = append(ts, &ggml.Tensor{Name: p + tg + ".weight", Kind: types[k], Shape: []uint64{uint64(in), uint64(out)}, WriterTo: b})
		}
		if c.HasQKVBias {
			ts = append(ts,
				&ggml.Tensor{Name: p + "attn_q.bias", Kind: 0, Shape: []uint64{uint64(q)}, WriterTo: f32(q, 0, 0.1)},
				&ggml.Tensor{Name: p + "attn_k.bias", Kind: 0, Shape: []uint64{uint64(kvd)}, WriterTo: f32(kvd, 0, 0.1)},
				&ggml.Tensor{Name: p + "attn_v.bias", Kind: 0, Shape: []uint64{uint64(kvd)}, WriterTo: f32(kvd, 0, 0.1)})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write random gguf: %w", err)
	}
	if err := ggml.WriteGGUF(f, kv, ts); err != nil {
		f.Close()
		return fmt.Errorf("write random gguf %s: %w", path, err)
	}
	return f.Close()
}

type rawBytes []byte

func (b rawBytes) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(b)
	return int64(n), err
}

// randomBlocks returns rows x in values of ggml type k as random valid blocks: random quants,
// finite scales chosen so that values are of order 0.01-0.1.
func randomBlocks(r *rand.Rand, k uint32, rows, in int) (rawBytes, error) {
	n := rows * in
	rnd := func(b []byte) {
		for i := 0; i+8 <= len(b); i += 8 {
			binary.LittleEndian.PutUint64(b[i:], r.Uint64())
		}
		for i := len(b) &^ 7; i < len(b); i++ {
			b[i] = byte(r.Uint32())
		}
	}
	h := func(b []byte, v float64) { binary.LittleEndian.PutUint16(b, float16.Fromfloat32(float32(v)).Bits()) }
	switch k {
	case TypeF16:
		out := make([]byte, 2*n)
		for i := 0; i < n; i++ {
			h(out[2*i:], 0.05*r.NormFloat64())
		}
		return out, nil
	case TypeQ8_0: // f16 d, int8 qs[32]
		if in%32 != 0 {
			return nil, fmt.Errorf("row length %d is not a multiple of 32", in)
		}
		out := make([]byte, n/32*34)
		rnd(out)
		for b := 0; b < n/32; b++ {
			h(out[b*34:], 4e-4*(1+r.Float64()))
		}
		return out, nil
	case TypeQ4_K: // f16 d, f16 dmin, scales[12], qs[128]
		if in%256 != 0 {
			return nil, fmt.Errorf("row length %d is not a multiple of 256", in)
		}
		out := make([]byte, n/256*144)
		rnd(out)
		for b := 0; b < n/256; b++ {
			h(out[b*144:], 2e-4*(1+r.Float64()))
			h(out[b*144+2:], 1.5e-3*(1+r.Float64()))
		}
		return out, nil
	case TypeQ6_K: // ql[128], qh[64], int8 scales[16], f16 d
		if in%256 != 0 {
			return nil, fmt.Errorf("row length %d is not a multiple of 256", in)
		}
		out := make([]byte, n/256*210)
		rnd(out)
		for b := 0; b < n/256; b++ {
			blk := out[b*210:]
			for i := 0; i < 16; i++ {
				blk[192+i] = byte(int8(r.IntN(128) - 64))
			}
			h(blk[208:], 1e-5*(1+r.Float64()))
		}
		return out, nil
	}
	return nil, fmt.Errorf("no random blocks for ggml type %d", k)
}
