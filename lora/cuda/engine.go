package cuda

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/rs/zerolog/log"

	"github.com/vzlocal/vzlocal/lora"
)

// Precision is the type of the base weights on the GPU and of the base GEMMs' operands.
type Precision int

const (
	// BF16 (the zero value, the default) keeps the base weights in bf16 and rounds the operands of the base and attention
	// GEMMs to bf16 (tensor cores, fp32 accumulation); activations, norms, softmaxes and every
	// LoRA product and gradient stay fp32. The default: half the weight memory of F32.
	BF16 Precision = iota
	// F32 keeps everything fp32 (no TF32): the tight-parity mode for tests.
	F32
)

func (p Precision) String() string {
	if p == F32 {
		return "f32"
	}
	return "bf16"
}

// Attention selects how the engine computes attention.
type Attention int

const (
	// AttnAuto (the zero value) is AttnFlash where it runs (BF16, head_dim 64 or 128: faster than
	// the GEMM path at every measured size, docs/cuda.md) and AttnGEMM otherwise.
	AttnAuto Attention = iota
	// AttnGEMM materializes each segment's scores per kv group and runs cuBLAS GEMMs on them.
	AttnGEMM
	// AttnFlash runs the tiled kernels of csrc/flash.cuh: scores stay in shared memory, so the
	// workspace has no G x m x (prefix + m) score buffers. BF16 precision, head_dim 64 or 128.
	AttnFlash
)

// ParseAttention reads "auto", "gemm" or "flash".
func ParseAttention(s string) (Attention, error) {
	switch s {
	case "auto", "":
		return AttnAuto, nil
	case "gemm":
		return AttnGEMM, nil
	case "flash":
		return AttnFlash, nil
	}
	return AttnAuto, fmt.Errorf("cuda: attention %q: want auto, gemm or flash", s)
}

func (a Attention) String() string {
	if a < AttnAuto || a > AttnFlash {
		return fmt.Sprintf("Attention(%d)", int(a))
	}
	return [...]string{"auto", "gemm", "flash"}[a]
}

// Options configure Open.
type Options struct {
	Library   string    // path of libvzlocal_cuda.so; "" searches (see candidates)
	Device    int       // CUDA device ordinal
	Precision Precision // BF16 (the default) or F32
	HeadChunk int       // rows per vocabulary-projection chunk; <= 0 means 256
	Attention Attention // AttnAuto (the default), AttnGEMM or AttnFlash
	// KeepLayers is how many blocks (the first ones) keep their activations from the forward for
	// the backward instead of recomputing them: 0 (the default) recomputes every block, -1 keeps
	// as many as fit in the device memory free at each Backward, leaving max(1 GiB, 1/16 of the
	// device) free. About 0.85 GB per block at 7B and 4,096 tokens (docs/cuda.md).
	KeepLayers int
	// GGUF, when set, is the file the model was loaded from: its layer matrices of type Q8_0,
	// Q4_K, Q6_K, F16, BF16 or F32 are kept in that form on the GPU and dequantized per layer
	// just before the layer runs (about 3.7 GiB instead of 13.2 for a Q4_K_M 7B's layers). The
	// head and other types come from the host model as usual.
	GGUF string
}

// supportedArch lists the architectures whose math the CUDA engine implements (RMSNorm, RoPE
// NORM/NEOX, GQA, optional q/k/v biases, SwiGLU). The CPU reference may know more (gemma3's
// non-causal image spans and sliding windows, qwen2vl's M-RoPE); those are refused here rather
// than computed wrongly.
var supportedArch = map[string]bool{"llama": true, "qwen2": true}

// Engine is the CUDA gradient engine: the same interface and math as lora.CPU, on one GPU.
// Not safe for concurrent use; calls are serialized by a mutex.
type Engine struct {
	mu    sync.Mutex
	m     *lora.Model // the host copy: config and the token-embedding rows gathered per batch
	h     unsafe.Pointer
	ad    *lora.Adapter
	pairs []*lora.Pair // the adapter's pairs in the library's flat order (gradients come back so)
	opt   Options
	dev   Device
	t0    time.Time
	flat  []float32 // SetAdapter's upload buffer, reused
}

var _ lora.Engine = (*Engine)(nil)

// Open loads the library, checks for a GPU, creates an engine and uploads the model's base
// weights (converted to the chosen precision on the GPU). The returned error wraps ErrNoLibrary
// or ErrNoDevice when the engine cannot run here, ErrUnsupported for an architecture it does not
// implement.
func Open(m *lora.Model, o Options) (*Engine, error) {
	e, err := create(m, o)
	if err != nil {
		return nil, err
	}
	if err := e.upload(); err != nil {
		e.Close()
		return nil, err
	}
	e.logReady()
	return e, nil
}

// create makes the library's engine for m's configuration; nothing is uploaded yet.
func create(m *lora.Model, o Options) (*Engine, error) {
	if !supportedArch[m.Cfg.Arch] {
		return nil, fmt.Errorf("%w: architecture %q (the CUDA engine runs llama and qwen2; use the CPU engine)", ErrUnsupported, m.Cfg.Arch)
	}
	path, err := load(o.Library)
	if err != nil {
		return nil, err
	}
	dev, err := probe(path)
	if err != nil {
		return nil, err
	}
	if o.Device < 0 || o.Device >= dev.Count {
		return nil, fmt.Errorf("%w: device %d requested, %d present", ErrNoDevice, o.Device, dev.Count)
	}
	h, err := cCreate(m.Cfg, o)
	if err != nil {
		return nil, err
	}
	e := &Engine{m: m, h: h, opt: o, dev: dev, t0: time.Now()}
	runtime.SetFinalizer(e, func(e *Engine) { e.Close() })
	return e, nil
}

func (e *Engine) logReady() {
	mem := cMemory(e.h)
	log.Info().Str("device", e.dev.String()).Str("precision", e.opt.Precision.String()).Str("attention", e.opt.Attention.String()).Int("keep_layers", e.opt.KeepLayers).
		Float64("weights_GiB", float64(mem.Weights)/(1<<30)).Dur("took", time.Since(e.t0)).Msg("lora: CUDA engine ready")
}

type vec struct {
	kind int
	w    []float32
}

// upload sends every base tensor of the model.
func (e *Engine) upload() error {
	m := e.m
	var raw []bool
	if e.opt.GGUF != "" {
		var err error
		if raw, err = e.uploadRaw(e.opt.GGUF); err != nil {
			return err
		}
	}
	for il := range m.Layers {
		l := &m.Layers[il]
		mats := [][]float32{l.Wq, l.Wk, l.Wv, l.Wo, l.Wgate, l.Wup, l.Wdown}
		for k, w := range mats {
			if raw != nil && raw[il*nTarget+k] {
				continue
			}
			if err := cSetWeight(e.h, il, k, w); err != nil {
				return err
			}
		}
		if err := e.uploadVectors(il); err != nil {
			return err
		}
	}
	if err := cSetWeight(e.h, -1, wOutNorm, m.OutNorm); err != nil {
		return err
	}
	return cSetWeight(e.h, -1, wOutput, m.Output)
}

// uploadVectors sends layer il's norms and (qwen2) q/k/v biases from the host model.
func (e *Engine) uploadVectors(il int) error {
	l := &e.m.Layers[il]
	vecs := []vec{{wAttnNorm, l.AttnNorm}, {wFFNNorm, l.FFNNorm}}
	if e.m.Cfg.HasQKVBias {
		vecs = append(vecs, vec{wBq, l.Bq}, vec{wBk, l.Bk}, vec{wBv, l.Bv})
	}
	for _, v := range vecs {
		if err := cSetWeight(e.h, il, v.kind, v.w); err != nil {
			return err
		}
	}
	return nil
}

// Close frees the engine's device memory. The engine cannot be used afterwards.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h != nil {
		cDestroy(e.h)
		e.h = nil
	}
	runtime.SetFinalizer(e, nil)
	return nil
}

func (e *Engine) Config() lora.Config { return e.m.Cfg }

// Device describes the GPU the engine runs on.
func (e *Engine) Device() Device { return e.dev }

// Memory reports device memory by purpose and the high-water mark of the engine's allocations.
func (e *Engine) Memory() Memory {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h == nil {
		return Memory{}
	}
	return cMemory(e.h)
}

// ReleaseWorkspace frees the device workspace of the passes (the next pass allocates it again),
// so that between training steps the GPU memory it held goes back to llama.cpp's rollouts: with
// KeepLayers -1 a backward keeps as many blocks as fit in what is free when it starts, and a
// workspace kept across the rollouts would leave them none to grow into.
func (e *Engine) ReleaseWorkspace() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h == nil {
		return fmt.Errorf("cuda: engine is closed")
	}
	return cReleaseWorkspace(e.h)
}

// flatAdapter lays the adapter out as vz_set_adapter wants it: present[l*7+t], then A and B of
// every present pair in (layer, target) order, in buf when buf has the room (the trainer uploads
// the same adapter before every pass: 161 MB at 7B rank 16, not reallocated). Gradients come back
// in the same layout.
func flatAdapter(a *lora.Adapter, nLayer int, buf []float32) (present []uint8, flat []float32, pairs []*lora.Pair) {
	present = make([]uint8, nLayer*nTarget)
	n := 0
	for il := 0; il < nLayer; il++ {
		for t, name := range lora.Targets {
			if p := a.Lookup(il, name); p != nil {
				present[il*nTarget+t] = 1
				pairs = append(pairs, p)
				n += len(p.A) + len(p.B)
			}
		}
	}
	if cap(buf) < n {
		buf = make([]float32, n)
	}
	flat = buf[:0]
	for _, p := range pairs {
		flat = append(flat, p.A...)
		flat = append(flat, p.B...)
	}
	return present, flat, pairs
}

// SetAdapter uploads the adapter (nil removes it). Unlike the CPU engine, which reads the
// adapter's slices at every pass, the values are copied to the GPU here: call SetAdapter again
// after changing them (the trainer does, before every pass). With the same shapes as the
// installed adapter, or as the one last removed, this is one host-to-device copy, no allocation
// (removing an adapter keeps its device and pinned buffers for its return).
func (e *Engine) SetAdapter(a *lora.Adapter) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h == nil {
		return fmt.Errorf("cuda: engine is closed")
	}
	if a == nil {
		e.ad, e.pairs = nil, nil
		return cSetAdapter(e.h, 0, 0, nil, nil)
	}
	if err := a.CheckModel(e.m.Cfg); err != nil {
		return fmt.Errorf("set adapter: %w", err)
	}
	present, flat, pairs := flatAdapter(a, e.m.Cfg.NLayer, e.flat)
	e.flat = flat
	if err := cSetAdapter(e.h, a.Rank, a.Scale(), present, flat); err != nil {
		return err
	}
	e.ad, e.pairs = a, pairs
	return nil
}

// pack lays the batch out with its input rows in the library's page-locked buffer (valid until the
// next pack); e.mu must be held.
func (e *Engine) pack(b *lora.Batch, weights [][]float32) (*packed, error) {
	pk, err := packBatch(b, e.m, weights, func(n int) ([]float32, error) { return cInputRows(e.h, n, e.m.Cfg.NEmbd) })
	if err != nil {
		return nil, err
	}
	pk.cos, pk.sin = lora.RopeAngles(e.m.Cfg, pk.pos, e.m.Cfg.RopeBase, e.m.Cfg.RopeScale)
	return pk, nil
}

// logProbs spreads per-target log-probs back to [seq][token].
func (pk *packed) logProbs(lp []float32) [][]float32 {
	out := make([][]float32, len(pk.seqLen))
	for s, n := range pk.seqLen {
		out[s] = make([]float32, n)
	}
	for i := range pk.tRow {
		out[pk.tSeq[i]][pk.tIdx[i]] = lp[i]
	}
	return out
}

func (e *Engine) LogProbs(b *lora.Batch) ([][]float32, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h == nil {
		return nil, fmt.Errorf("cuda: engine is closed")
	}
	pk, err := e.pack(b, nil)
	if err != nil {
		return nil, fmt.Errorf("log-probs: %w", err)
	}
	lp := make([]float32, len(pk.tRow))
	if err := cRun(e.h, pk, nil, lp, e.m.Cfg.NLayer, nil); err != nil {
		return nil, err
	}
	return pk.logProbs(lp), nil
}

// Backward returns the loss's log-probs and its gradient with respect to the adapter, in a
// freshly allocated adapter (Result.Grads) the caller owns.
func (e *Engine) Backward(b *lora.Batch, weights [][]float32) (*lora.Result, error) {
	return e.backward(b, weights, nil)
}

// BackwardInto is Backward that adds the gradient into grads (the shapes of the installed
// adapter) instead of returning it; Result.Grads is grads. A trainer that sums the gradients of
// several passes saves a fresh allocation per pass: 154 MB at 7B and rank 16, whose first touch
// (page faults) cost more than the pass's whole download (bench/README.md).
func (e *Engine) BackwardInto(b *lora.Batch, weights [][]float32, grads *lora.Adapter) (*lora.Result, error) {
	if grads == nil {
		return nil, fmt.Errorf("backward: no gradient adapter to add into")
	}
	return e.backward(b, weights, grads)
}

func (e *Engine) backward(b *lora.Batch, weights [][]float32, into *lora.Adapter) (*lora.Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h == nil {
		return nil, fmt.Errorf("cuda: engine is closed")
	}
	if weights == nil {
		return nil, fmt.Errorf("backward: no per-token weights")
	}
	if into != nil && e.ad == nil {
		return nil, fmt.Errorf("backward: a gradient adapter to add into, but no adapter installed")
	}
	pk, err := e.pack(b, weights)
	if err != nil {
		return nil, fmt.Errorf("backward: %w", err)
	}
	tw := make([]float32, len(pk.tRow))
	for i := range tw {
		tw[i] = weights[pk.tSeq[i]][pk.tIdx[i]]
	}
	lp := make([]float32, len(pk.tRow))
	t0 := time.Now()
	res := &lora.Result{Tokens: pk.n}
	if e.ad == nil {
		// No adapter: nothing to differentiate (as the CPU engine, which returns nil Grads).
		if err := cRun(e.h, pk, tw, lp, e.m.Cfg.NLayer, nil); err != nil {
			return nil, err
		}
	} else {
		g := into
		if g == nil {
			g = e.ad.ZeroLike()
		}
		if err := e.runGrads(pk, tw, lp, g, into != nil); err != nil {
			return nil, err
		}
		res.Grads = g
	}
	res.LogProbs = pk.logProbs(lp)
	for i := range lp {
		res.Loss += float64(tw[i]) * float64(lp[i])
	}
	log.Debug().Int("seqs", len(b.Seqs)).Int("rows", pk.n).Int("shared_prefix", pk.prefix).
		Int("scored", len(pk.tRow)).Dur("took", time.Since(t0)).Msg("lora: CUDA backward")
	return res, nil
}

// runGrads runs the pass and copies (add false) or adds (add true) the gradient into g, whose
// pairs must match the installed adapter's. Each layer's gradients are moved as soon as they reach
// the host, while the GPU goes on with the layers below: at 7B and rank 16 they are 154 MB, tens of
// milliseconds for one core after the pass, nearly nothing hidden behind it.
func (e *Engine) runGrads(pk *packed, tw, lp []float32, g *lora.Adapter, add bool) error {
	L := e.m.Cfg.NLayer
	offs := make([]int, len(e.pairs)+1) // each pair's A then B in the library's flat layout
	byLayer := make([][]int, L)
	gps := make([]*lora.Pair, len(e.pairs))
	for i, p := range e.pairs {
		offs[i+1] = offs[i] + len(p.A) + len(p.B)
		byLayer[p.Layer] = append(byLayer[p.Layer], i)
		gp := g.Lookup(p.Layer, p.Target)
		if gp == nil || len(gp.A) != len(p.A) || len(gp.B) != len(p.B) {
			return fmt.Errorf("backward: the gradient adapter does not match the installed adapter at %s", p.Name)
		}
		gps[i] = gp
	}
	put := func(dst, src []float32) {
		if !add {
			copy(dst, src)
			return
		}
		for i, v := range src {
			dst[i] += v
		}
	}
	// One goroutine per pair of a landed layer; all of them done before the buffer can be reused.
	var wg sync.WaitGroup
	defer wg.Wait()
	return cRun(e.h, pk, tw, lp, L, func(l int, grads []float32) {
		for _, i := range byLayer[l] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, off := e.pairs[i], offs[i]
				put(gps[i].A, grads[off:off+len(p.A)])
				put(gps[i].B, grads[off+len(p.A):offs[i+1]])
			}()
		}
	})
}

// MemoryEstimate is the device workspace a Backward of the batch allocates plus the adapter's
// gradient buffer (weights and the adapter's values excluded), as the CPU engine counts it.
func (e *Engine) MemoryEstimate(b *lora.Batch) (int64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.h == nil {
		return 0, fmt.Errorf("cuda: engine is closed")
	}
	pk, _, err := layoutBatch(b, e.m.Cfg, nil)
	if err != nil {
		return 0, fmt.Errorf("memory estimate: %w", err)
	}
	ws := cWorkspace(e.h, pk, true)
	if ws < 0 {
		return 0, fmt.Errorf("memory estimate: the library rejected the batch")
	}
	if e.ad != nil {
		ws += 4 * int64(e.ad.NumParams())
	}
	return ws, nil
}

// sortedTargets reports whether pk's targets are sorted by row (the library's precondition).
func (pk *packed) sortedTargets() bool { return slices.IsSorted(pk.tRow) }
