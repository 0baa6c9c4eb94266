package lora

import (
	"fmt"
	"time"

	"github.com/rs/zerolog/log"
)

// Engine is the trainer's view of a gradient engine (the CPU reference here; CUDA later).
//
// Sign convention: Backward computes the gradient of
//
//	loss = sum over scored tokens t of w_t * log p(token_t | tokens < t)
//
// so d(loss)/d(logp_t) = w_t. The trainer (optim) produces w_t (advantage times importance weight
// times loss normalization, with the sign it needs: to maximize the objective J pass w_t = -dJ/dlogp_t
// and descend, or pass +dJ/dlogp_t and ascend). Unscored tokens carry no weight.
type Engine interface {
	// Config returns the base model's hyper-parameters.
	Config() Config
	// SetAdapter installs the adapter to evaluate and differentiate (nil: the base model alone).
	SetAdapter(a *Adapter) error
	// LogProbs returns per-token log-probs, [seq][token], 0 where a token is not scored.
	LogProbs(b *Batch) ([][]float32, error)
	// Backward returns the log-probs, the loss and d(loss)/d(every LoRA A and B).
	Backward(b *Batch, weights [][]float32) (*Result, error)
	// MemoryEstimate is the engine's working memory for the batch in bytes (weights excluded).
	MemoryEstimate(b *Batch) (int64, error)
}

// Result of a Backward pass.
type Result struct {
	LogProbs [][]float32
	Loss     float64
	Grads    *Adapter // same shapes as the adapter; A and B hold the gradients
	Tokens   int      // packed rows the pass computed (the shared prompt counted once)
}

// Options of the CPU engine.
type Options struct {
	Threads int // OpenBLAS and Go worker threads; <= 0 means 1
	// Recompute keeps only each layer's input during the forward and recomputes the layer's
	// activations in the backward: memory O(layers * tokens * n_embd) instead of
	// O(layers * tokens * (n_embd + n_ff)), for about one more forward of compute.
	Recompute bool
	// MemoryBudget (bytes, 0 = none): a Backward whose MemoryEstimate without recomputation exceeds
	// it recomputes activations for that call even when Recompute is false.
	MemoryBudget int64
	// HeadChunk is the number of rows per vocabulary-projection chunk (default 64): logits are never
	// held for more rows than this.
	HeadChunk int
}

// CPU is the CPU reference engine: float32, matrix products through OpenBLAS. Not safe for
// concurrent use (one pass at a time; OpenBLAS threads are set per pass).
type CPU struct {
	m     *Model
	ad    *Adapter
	opt   Options
	fault fault // test hook: corrupt one gradient term
	// emulateF16KV (test hook, forward only) rounds q, k, v and attention probabilities to f16 as
	// llama.cpp's default F16 KV cache does, to tighten the parity test.
	emulateF16KV bool
	// emulateFlashAttn (test hook, forward only, with emulateF16KV) runs attention as llama.cpp's
	// CPU flash-attention kernel does (attention_fa.go): the rollout engine's contexts use it.
	emulateFlashAttn bool
}

var _ Engine = (*CPU)(nil)

// NewCPU wraps a loaded base model.
func NewCPU(m *Model, o Options) *CPU {
	if o.Threads <= 0 {
		o.Threads = 1
	}
	if o.HeadChunk <= 0 {
		o.HeadChunk = 64
	}
	return &CPU{m: m, opt: o}
}

// LoadCPU loads a GGUF base model and returns a CPU engine for it.
func LoadCPU(path string, o Options) (*CPU, error) {
	m, err := LoadModel(path)
	if err != nil {
		return nil, err
	}
	return NewCPU(m, o), nil
}

func (e *CPU) Config() Config { return e.m.Cfg }

// Model returns the dequantized base model.
func (e *CPU) Model() *Model { return e.m }

func (e *CPU) SetAdapter(a *Adapter) error {
	if a != nil {
		if err := a.CheckModel(e.m.Cfg); err != nil {
			return fmt.Errorf("set adapter: %w", err)
		}
	}
	e.ad = a
	return nil
}

func (e *CPU) LogProbs(b *Batch) ([][]float32, error) {
	pk, err := pack(b, e.m.Cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("log-probs: %w", err)
	}
	r, err := e.run(pk, nil, nil, nil, false, false)
	if err != nil {
		return nil, err
	}
	return r.LogProbs, nil
}

func (e *CPU) Backward(b *Batch, weights [][]float32) (*Result, error) {
	if weights == nil {
		return nil, fmt.Errorf("backward: no per-token weights")
	}
	pk, err := pack(b, e.m.Cfg, weights)
	if err != nil {
		return nil, fmt.Errorf("backward: %w", err)
	}
	return e.differentiate(b, pk, weights, nil, "backward")
}

// differentiate runs the forward and backward of a packed batch with the loss weights given, or
// computed by weigh from the forward's log-probs, and logs it as what.
func (e *CPU) differentiate(b *Batch, pk *packed, weights [][]float32, weigh func([][]float32) ([][]float32, error), what string) (*Result, error) {
	var g *Adapter
	if e.ad != nil {
		g = e.ad.ZeroLike()
	}
	t0 := time.Now()
	res, err := e.run(pk, weights, weigh, g, true, e.recomputes(pk))
	if err != nil {
		return nil, err
	}
	log.Debug().Int("seqs", len(b.Seqs)).Int("rows", pk.n).Int("shared_prefix", pk.prefix).
		Int("scored", len(pk.targets)).Dur("took", time.Since(t0)).Msg("lora: " + what)
	return res, nil
}

// BackwardWeighed is LogProbs followed by Backward in one forward: weigh receives the log-probs
// ([seq][token], as LogProbs returns them) and returns the per-token loss weights, and the
// backward runs from the same activations. A policy-gradient loss needs log pi_theta before its
// weights exist; this saves the separate scoring forward through every block (the head, a small
// part of a forward, runs twice). An error from weigh is returned as it is.
func (e *CPU) BackwardWeighed(b *Batch, weigh func(logp [][]float32) ([][]float32, error)) (*Result, error) {
	if weigh == nil {
		return nil, fmt.Errorf("backward: no weighing function")
	}
	pk, err := pack(b, e.m.Cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("backward: %w", err)
	}
	weighChecked := func(lp [][]float32) ([][]float32, error) {
		w, err := weigh(lp)
		if err != nil {
			return nil, err
		}
		if w == nil {
			return nil, fmt.Errorf("backward: the weighing function returned no weights")
		}
		if err := checkWeights(b, w); err != nil {
			return nil, fmt.Errorf("backward: %w", err)
		}
		return w, nil
	}
	return e.differentiate(b, pk, nil, weighChecked, "backward (weighed)")
}

func (e *CPU) MemoryEstimate(b *Batch) (int64, error) {
	pk, err := pack(b, e.m.Cfg, nil)
	if err != nil {
		return 0, fmt.Errorf("memory estimate: %w", err)
	}
	return e.memory(pk, e.recomputes(pk)), nil
}

// recomputes says whether a backward of pk recomputes each layer's activations instead of keeping
// them: always with Options.Recompute, else when keeping them would exceed Options.MemoryBudget.
func (e *CPU) recomputes(pk *packed) bool {
	return e.opt.Recompute || (e.opt.MemoryBudget > 0 && e.memory(pk, false) > e.opt.MemoryBudget)
}

// memory counts the float32 buffers a backward of a packed batch allocates.
func (e *CPU) memory(pk *packed, recompute bool) int64 {
	c := e.m.Cfg
	n := int64(pk.n)
	cache := layerCacheFloats(c, e.rank(), pk.n)
	var f int64
	f += 2 * int64(newAttnDims(c, pk, 1, false).attnScratch(pk.segs)) // attention scores and their gradient
	f += int64(e.opt.HeadChunk) * (int64(c.NVocab) + int64(c.NEmbd))  // logits chunk
	f += 2 * n * int64(c.NEmbd)                                       // residual stream and its gradient
	if recompute {
		f += int64(c.NLayer)*n*int64(c.NEmbd) + cache
	} else {
		f += int64(c.NLayer) * (n*int64(c.NEmbd) + cache)
	}
	f += layerGradFloats(c, e.rank(), pk.n)
	if e.ad != nil {
		f += int64(e.ad.NumParams())
	}
	return 4 * f
}

func (e *CPU) rank() int {
	if e.ad == nil {
		return 0
	}
	return e.ad.Rank
}
