package llm

/*
#cgo CXXFLAGS: -std=c++17
#include <stdlib.h>
#include "ggml.h"
#include "ggml-backend.h"
#include "llama.h"
#include "mtmd.h"
#include "mtmd-helper.h"
#include "vz.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ollama/ollama/llama"
	"github.com/rs/zerolog/log"
)

// Options configure a loaded model and its one llama.cpp context.
type Options struct {
	Threads     int    // CPU threads for decoding and the vision encoder; 0 = all cores
	ContextSize int    // KV cells shared by all sequences of one call (unified cache); 0 = 4096
	BatchSize   int    // most tokens per llama_decode; 0 = 512
	Parallel    int    // most completions decoded together; 0 = 8
	GPULayers   int    // layers to offload: 0 = all when a GPU backend is present, none on CPU; <0 = none
	Seed        uint64 // default seed of Generate when its Sampling.Seed is 0
	ImageCache  int    // images whose embeddings are kept; 0 = 64
}

func (o Options) withDefaults() Options {
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
	if o.ContextSize <= 0 {
		o.ContextSize = 4096
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 512
	}
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	if o.ImageCache <= 0 {
		o.ImageCache = 64
	}
	return o
}

// maxParallel keeps sequence ids (1..Parallel, 0 for the prompt) below llama.cpp's LLAMA_MAX_SEQ.
const maxParallel = 255

func (o Options) check() error {
	switch {
	case o.Parallel > maxParallel:
		return fmt.Errorf("llm: Options.Parallel %d is more than %d", o.Parallel, maxParallel)
	case o.Parallel > o.BatchSize:
		return fmt.Errorf("llm: Options.Parallel %d is more than Options.BatchSize %d (one token of each sequence goes in a batch)", o.Parallel, o.BatchSize)
	case o.ContextSize < 16:
		return fmt.Errorf("llm: Options.ContextSize %d is too small", o.ContextSize)
	}
	return nil
}

// Model is a loaded text model, its optional vision projector and one llama.cpp context.
// Its methods are safe for concurrent use but run one at a time.
type Model struct {
	mu     sync.Mutex
	path   string
	opts   Options
	info   Info
	model  *C.struct_llama_model
	ctx    *C.struct_llama_context
	vocab  *C.struct_llama_vocab
	mtmd   *C.mtmd_context
	batch  C.struct_llama_batch // token batch of opts.BatchSize entries
	images *imageCache

	adapter *Adapter              // attached adapter, nil for the base model
	loaded  map[*Adapter]struct{} // every adapter not yet freed, freed by Close
	scale   float32
	epoch   uint64 // bumped whenever the weights in effect change; invalidates cached prompt KV
	cached  cachedPrompt
	rows    rowSampler // samples and scores a decode's logits rows on several cores
}

// Info describes a loaded model.
type Info struct {
	Arch            string // llama.cpp architecture of the text model
	Projector       string // clip.projector_type, "" without an mmproj
	NVocab          int
	NEmbd           int  // hidden width
	NEmbdInp        int  // width of an image embedding row
	ContextSize     int  // KV cells actually allocated
	MRoPE           bool // image rows use 2-D positions; positions advance by NPos, not Rows
	NonCausalImages bool // image rows attend to each other both ways (gemma3)
	GPU             bool // layers were offloaded to a GPU
}

var backendOnce sync.Once

// graph reuse must be off: llama.cpp compares only a pointer to the context's adapter map when it
// decides to reuse the previous graph, so attaching, detaching or rescaling an adapter after the
// first decode would be silently ignored (llama-cpp-notes §1.5, cgo-notes §6.1). It is read when a
// context is created.
const graphReuseEnv = "LLAMA_GRAPH_REUSE_DISABLE"

// graphReuse is set only by the benchmark that measures what disabling reuse costs.
var graphReuse = false

// Load validates the files, then loads the text model, its context and, if mmprojPath is not
// empty, the vision projector.
func Load(modelPath, mmprojPath string, opts Options) (*Model, error) {
	text, err := checkModel(modelPath)
	if err != nil {
		return nil, err
	}
	var proj projInfo
	if mmprojPath != "" {
		if proj, err = checkProjector(mmprojPath, text); err != nil {
			return nil, err
		}
	}
	opts = opts.withDefaults()
	if err := opts.check(); err != nil {
		return nil, err
	}
	backendOnce.Do(llama.BackendInit)
	installLog()
	takeLogErrors()

	gpus := gpuDevices()
	gpu := opts.GPULayers >= 0 && len(gpus) > 0
	logDevices(gpus, gpu, opts.GPULayers)
	mp := C.llama_model_default_params()
	mp.n_gpu_layers = 0
	if gpu {
		mp.n_gpu_layers = 999
		if opts.GPULayers > 0 {
			mp.n_gpu_layers = C.int32_t(opts.GPULayers)
		}
	}
	mp.use_mmap = true
	cpath := C.CString(modelPath)
	defer C.free(unsafe.Pointer(cpath))
	m := &Model{path: modelPath, opts: opts}
	m.model = C.llama_model_load_from_file(cpath, mp)
	if m.model == nil {
		return nil, fileErr("model", modelPath, "llama.cpp could not load it: %s", takeLogErrors())
	}

	reuse := "1"
	if graphReuse {
		reuse = "0"
	}
	if err := os.Setenv(graphReuseEnv, reuse); err != nil {
		m.Close()
		return nil, fmt.Errorf("set %s: %w", graphReuseEnv, err)
	}
	cp := C.llama_context_default_params()
	cp.n_ctx = C.uint32_t(opts.ContextSize)
	cp.n_batch = C.uint32_t(opts.BatchSize)
	cp.n_ubatch = C.uint32_t(opts.BatchSize)
	cp.n_seq_max = C.uint32_t(opts.Parallel + 1) // sequence 0 holds the prompt
	cp.n_threads = C.int32_t(opts.Threads)
	cp.n_threads_batch = C.int32_t(opts.Threads)
	cp.embeddings = false
	cp.no_perf = true
	cp.kv_unified = true // completions share the prompt's cells instead of copying them
	m.ctx = C.llama_init_from_model(m.model, cp)
	if m.ctx == nil {
		m.Close()
		return nil, fmt.Errorf("model %s: llama.cpp could not create a context (n_ctx %d, n_batch %d): %s",
			modelPath, opts.ContextSize, opts.BatchSize, takeLogErrors())
	}
	m.vocab = C.llama_model_get_vocab(m.model)
	m.batch = C.llama_batch_init(C.int32_t(opts.BatchSize), 0, 1)
	m.images = newImageCache(opts.ImageCache)
	m.info = Info{
		Arch:        text.arch,
		NVocab:      int(C.llama_vocab_n_tokens(m.vocab)),
		NEmbd:       int(C.llama_model_n_embd(m.model)),
		NEmbdInp:    int(C.llama_model_n_embd_inp(m.model)),
		ContextSize: int(C.llama_n_ctx(m.ctx)),
		GPU:         gpu,
	}

	if mmprojPath != "" {
		pp := C.mtmd_context_params_default()
		pp.use_gpu = C.bool(gpu)
		pp.n_threads = C.int(opts.Threads)
		pp.print_timings = false
		cmm := C.CString(mmprojPath)
		defer C.free(unsafe.Pointer(cmm))
		m.mtmd = C.mtmd_init_from_file(cmm, m.model, pp)
		if m.mtmd == nil {
			m.Close()
			return nil, fileErr("mmproj", mmprojPath, "llama.cpp could not load it: %s", takeLogErrors())
		}
		if !C.mtmd_support_vision(m.mtmd) {
			m.Close()
			return nil, fileErr("mmproj", mmprojPath, "has no vision support")
		}
		m.info.Projector = proj.projector
		m.info.MRoPE = bool(C.mtmd_decode_use_mrope(m.mtmd))
		m.info.NonCausalImages = bool(C.mtmd_decode_use_non_causal(m.mtmd))
	}
	log.Debug().Str("model", modelPath).Str("mmproj", mmprojPath).Interface("info", m.info).
		Int("threads", opts.Threads).Msg("llm: loaded")
	return m, nil
}

// Info describes the loaded model.
func (m *Model) Info() Info { return m.info }

// Close frees the adapter, the projector, the context and the model.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closeLocked()
	return nil
}

func (m *Model) closeLocked() {
	for a := range m.loaded {
		a.freeLocked()
	}
	if m.mtmd != nil {
		C.mtmd_free(m.mtmd)
		m.mtmd = nil
	}
	if m.batch.token != nil {
		C.llama_batch_free(m.batch)
		m.batch = C.struct_llama_batch{}
	}
	if m.ctx != nil {
		C.llama_free(m.ctx)
		m.ctx = nil
	}
	if m.model != nil {
		C.llama_model_free(m.model)
		m.model = nil
	}
}

var errClosed = errors.New("llm: model is closed")
