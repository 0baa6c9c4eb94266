package cuda

import (
	"fmt"
	"os"
	"syscall"

	"github.com/vzlocal/vzlocal/internal/ggmlquant"

	"github.com/ollama/ollama/fs/ggml"

	"github.com/vzlocal/vzlocal/lora"
)

// OpenFile opens the CUDA engine straight from a GGUF, without a dequantized host model: every
// layer matrix and the head go to the GPU as the file's blocks (layers stay quantized and are
// dequantized per layer; the head is dequantized once on the GPU), and the host keeps only the
// token embedding (expanded to fp32 on the GPU: 2.2 GB for a 7B) plus norms and biases. This is
// the path for a large model on a small machine: a Q4_K_M 7B needs about 3.7 GiB of GPU memory for
// its layers instead of 13.2 (docs/cuda.md) and no 30 GB fp32 copy on the host. Every matrix must
// be F32, F16, BF16, Q8_0, Q4_K or Q6_K; otherwise load the model with lora.LoadModel and use Open.
func OpenFile(path string, o Options) (*Engine, error) {
	f, err := openGGUF(path)
	if err != nil {
		return nil, err
	}
	defer f.close()
	m, err := f.lightModel()
	if err != nil {
		return nil, err
	}
	e, err := create(m, o)
	if err != nil {
		return nil, err
	}
	if err := e.uploadFile(f); err != nil {
		e.Close()
		return nil, err
	}
	e.logReady()
	return e, nil
}

// ggufFile is a GGUF's header and its mmap'd bytes.
type ggufFile struct {
	path   string
	g      *ggml.GGML // the decoded header (small arrays kept, for lora.ConfigFromGGUF)
	data   []byte
	base   uint64
	byName map[string]*ggml.Tensor
}

func openGGUF(path string) (*ggufFile, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	defer fh.Close()
	g, err := ggml.Decode(fh, 16) // small arrays (rope.dimension_sections) only
	if err != nil {
		return nil, fmt.Errorf("cuda: read %s: %w", path, err)
	}
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	data, err := syscall.Mmap(int(fh.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("cuda: mmap %s: %w", path, err)
	}
	f := &ggufFile{path: path, g: g, data: data, base: g.Tensors().Offset, byName: map[string]*ggml.Tensor{}}
	for _, t := range g.Tensors().Items() {
		f.byName[t.Name] = t
	}
	return f, nil
}

func (f *ggufFile) close() { syscall.Munmap(f.data) }

// tensor returns a tensor's header and bytes, checking its element count.
func (f *ggufFile) tensor(name string, elems int) (*ggml.Tensor, []byte, error) {
	t := f.byName[name]
	if t == nil {
		return nil, nil, fmt.Errorf("cuda: %s: missing tensor %s", f.path, name)
	}
	if int(t.Elements()) != elems {
		return nil, nil, fmt.Errorf("cuda: %s: tensor %s has %d values, want %d", f.path, name, t.Elements(), elems)
	}
	off, size := f.base+t.Offset, t.Size()
	if off+size > uint64(len(f.data)) {
		return nil, nil, fmt.Errorf("cuda: %s: tensor %s beyond the end of the file", f.path, name)
	}
	return t, f.data[off : off+size], nil
}

// vector reads a small F32, F16 or BF16 tensor (norms, biases, rope_freqs) into float32.
func (f *ggufFile) vector(name string, n int) ([]float32, error) {
	t, b, err := f.tensor(name, n)
	if err != nil {
		return nil, err
	}
	if t.Kind != lora.TypeF32 && t.Kind != lora.TypeF16 && t.Kind != lora.TypeBF16 {
		return nil, fmt.Errorf("cuda: %s: tensor %s has type %d; vectors must be F32, F16 or BF16", f.path, name, t.Kind)
	}
	out := make([]float32, n)
	if err := ggmlquant.Dequantize(t.Kind, b, out); err != nil {
		return nil, fmt.Errorf("cuda: %s: tensor %s: %w", f.path, name, err)
	}
	return out, nil
}

// lightModel reads the configuration, norms and biases; the token embedding is filled in by
// uploadFile (expanded on the GPU), the matrices never come to the host.
func (f *ggufFile) lightModel() (*lora.Model, error) {
	cfg, err := lora.ConfigFromGGUF(f.g)
	if err != nil {
		return nil, fmt.Errorf("cuda: read model config %s: %w", f.path, err)
	}
	if f.byName["rope_freqs.weight"] != nil {
		if cfg.RopeFreqs, err = f.vector("rope_freqs.weight", cfg.NRot/2); err != nil {
			return nil, err
		}
	}
	m := &lora.Model{Cfg: cfg, Layers: make([]lora.Layer, cfg.NLayer)}
	E, q, kv := cfg.NEmbd, cfg.NHead*cfg.HeadDim, cfg.NHeadKV*cfg.HeadDim
	if m.OutNorm, err = f.vector("output_norm.weight", E); err != nil {
		return nil, err
	}
	for il := range m.Layers {
		l := &m.Layers[il]
		p := fmt.Sprintf("blk.%d.", il)
		if l.AttnNorm, err = f.vector(p+"attn_norm.weight", E); err != nil {
			return nil, err
		}
		if l.FFNNorm, err = f.vector(p+"ffn_norm.weight", E); err != nil {
			return nil, err
		}
		if cfg.HasQKVBias {
			if l.Bq, err = f.vector(p+"attn_q.bias", q); err != nil {
				return nil, err
			}
			if l.Bk, err = f.vector(p+"attn_k.bias", kv); err != nil {
				return nil, err
			}
			if l.Bv, err = f.vector(p+"attn_v.bias", kv); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// uploadFile sends the file's matrices as blocks and the small tensors from the light model, and
// expands the token embedding on the GPU into the host model.
func (e *Engine) uploadFile(f *ggufFile) error {
	m := e.m
	c := m.Cfg
	E, V := c.NEmbd, c.NVocab
	t, b, err := f.gpuMatrix("token_embd.weight", E, V)
	if err != nil {
		return err
	}
	m.TokEmbd = make([]float32, E*V)
	if err := cDequantize(e.h, t.Kind, b, m.TokEmbd); err != nil {
		return err
	}
	head := "output.weight"
	if c.TiedOutput {
		head = "token_embd.weight"
	}
	if t, b, err = f.gpuMatrix(head, E, V); err != nil {
		return err
	}
	if err := cSetWeightRaw(e.h, -1, wOutput, t.Kind, b); err != nil {
		return err
	}
	if err := cSetWeight(e.h, -1, wOutNorm, m.OutNorm); err != nil {
		return err
	}
	for il := range m.Layers {
		for k, tg := range lora.Targets {
			in, out, _ := c.LinearShape(tg)
			t, b, err := f.gpuMatrix(fmt.Sprintf("blk.%d.%s.weight", il, tg), in, out)
			if err != nil {
				return err
			}
			if err := cSetWeightRaw(e.h, il, k, t.Kind, b); err != nil {
				return err
			}
		}
		if err := e.uploadVectors(il); err != nil {
			return err
		}
	}
	return nil
}

// gpuMatrix returns a [in][out] matrix's header and blocks, which the GPU must be able to
// dequantize (rawTypes).
func (f *ggufFile) gpuMatrix(name string, in, out int) (*ggml.Tensor, []byte, error) {
	t, b, err := f.tensor(name, in*out)
	if err != nil {
		return nil, nil, err
	}
	if len(t.Shape) != 2 || int(t.Shape[0]) != in {
		return nil, nil, fmt.Errorf("cuda: %s: %s has shape %v, want [%d %d]", f.path, name, t.Shape, in, out)
	}
	if !rawTypes[t.Kind] {
		return nil, nil, fmt.Errorf("%w: %s: %s has ggml type %d, which the GPU cannot dequantize (load the model and use Open)", ErrUnsupported, f.path, name, t.Kind)
	}
	return t, b, nil
}
