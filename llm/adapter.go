package llm

/*
#include <stdlib.h>
#include "llama.h"
#include "vz.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unsafe"

	"github.com/rs/zerolog/log"
)

// Adapter is a LoRA adapter loaded for a model.
//
// Two ways to follow training, both safe because the context never reuses graphs (see
// graphReuseEnv): load the new GGUF (SwapAdapter, which frees the old one) or overwrite the loaded
// adapter's tensors in place from float32 data (Update: a memcpy, no allocation, rank and
// targets fixed).
type Adapter struct {
	m       *Model
	c       *C.struct_llama_adapter_lora
	path    string
	alpha   float32
	tensors map[string]adapterTensor // by GGUF tensor name, e.g. "blk.0.attn_q.weight.lora_a"
}

type adapterTensor struct {
	ptr   unsafe.Pointer
	shape [2]int // ggml ne order
}

// Path is the file the adapter was loaded from.
func (a *Adapter) Path() string { return a.path }

// Alpha is adapter.lora.alpha (0 when absent: the scale is then not divided by the rank).
func (a *Adapter) Alpha() float32 { return a.alpha }

// Tensors lists the adapter's tensor names with their shapes (ggml ne order); none once freed.
func (a *Adapter) Tensors() map[string][2]int {
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	out := make(map[string][2]int, len(a.tensors))
	for n, t := range a.tensors {
		out[n] = t.shape
	}
	return out
}

// LoadAdapter validates a GGUF LoRA adapter against the model and loads it (not attached yet:
// see SetAdapter).
func (m *Model) LoadAdapter(path string) (*Adapter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.model == nil {
		return nil, errClosed
	}
	return m.loadAdapter(path)
}

func (m *Model) loadAdapter(path string) (*Adapter, error) {
	info, err := checkAdapter(path, m.info.Arch)
	if err != nil {
		return nil, err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	c := C.llama_adapter_lora_init(m.model, cpath)
	if c == nil {
		return nil, fileErr("adapter", path, "llama.cpp could not load it: %s", takeLogErrors())
	}
	a := &Adapter{m: m, c: c, path: path, alpha: info.alpha, tensors: map[string]adapterTensor{}}
	for _, name := range info.names {
		base, which := strings.TrimSuffix(name, ".lora_a"), C.char('a')
		if strings.HasSuffix(name, ".lora_b") {
			base, which = strings.TrimSuffix(name, ".lora_b"), 'b'
		}
		cbase := C.CString(base)
		var ne0, ne1 C.int64_t
		var typ C.int32_t
		ptr := C.vz_adapter_tensor(c, cbase, which, &ne0, &ne1, &typ)
		C.free(unsafe.Pointer(cbase))
		if ptr == nil {
			C.llama_adapter_lora_free(c)
			return nil, fileErr("adapter", path, "tensor %s was not loaded by llama.cpp", name)
		}
		a.tensors[name] = adapterTensor{ptr: ptr, shape: [2]int{int(ne0), int(ne1)}}
	}
	if m.loaded == nil {
		m.loaded = map[*Adapter]struct{}{}
	}
	m.loaded[a] = struct{}{}
	return a, nil
}

// SetAdapter attaches a (nil for the base model) at scale, replacing any adapter attached before;
// the effective scale of ΔW is scale·alpha/rank. Scale 0 also gives the base model.
func (m *Model) SetAdapter(a *Adapter, scale float32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.setAdapter(a, scale)
}

func (m *Model) setAdapter(a *Adapter, scale float32) error {
	if m.model == nil {
		return errClosed
	}
	if a != nil && (a.m != m || a.c == nil) {
		return errors.New("llm: SetAdapter: adapter belongs to another model or was freed")
	}
	if math.IsNaN(float64(scale)) || math.IsInf(float64(scale), 0) {
		return fmt.Errorf("llm: SetAdapter: scale %v is not a finite number", scale)
	}
	if a == m.adapter && (a == nil || scale == m.scale) {
		return nil // nothing changes: keep the cached prompt
	}
	C.llama_clear_adapter_lora(m.ctx)
	m.adapter, m.scale = nil, 0
	if a != nil {
		if rc := C.llama_set_adapter_lora(m.ctx, a.c, C.float(scale)); rc != 0 {
			return fmt.Errorf("llm: attaching adapter %s failed (code %d)", a.path, int(rc))
		}
		m.adapter, m.scale = a, scale
	}
	m.epoch++
	return nil
}

// SwapAdapter loads the adapter at path, attaches it at scale 1 and frees the adapter attached
// before, if any: the step that follows each training step when the trainer writes a GGUF.
func (m *Model) SwapAdapter(path string) (*Adapter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.model == nil {
		return nil, errClosed
	}
	a, err := m.loadAdapter(path)
	if err != nil {
		return nil, err
	}
	old := m.adapter
	if err := m.setAdapter(a, 1); err != nil {
		a.freeLocked()
		return nil, err
	}
	if old != nil {
		old.freeLocked()
	}
	return a, nil
}

// Update overwrites one adapter tensor in place with data (row-major in ggml ne order, i.e.
// ne[0] contiguous; converted to the tensor's type). name is the GGUF tensor name, e.g.
// "blk.0.attn_q.weight.lora_a".
func (a *Adapter) Update(name string, data []float32) error {
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	if a.c == nil || a.m.model == nil {
		return errors.New("llm: Update: adapter was freed")
	}
	t, ok := a.tensors[name]
	if !ok {
		return fmt.Errorf("llm: adapter %s has no tensor %q", a.path, name)
	}
	if len(data) != t.shape[0]*t.shape[1] {
		return fmt.Errorf("llm: adapter tensor %s has shape %v (%d values), got %d", name, t.shape, t.shape[0]*t.shape[1], len(data))
	}
	for i, v := range data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("llm: adapter tensor %s: value %d is %v", name, i, v)
		}
	}
	if rc := C.vz_tensor_set_f32(t.ptr, (*C.float)(unsafe.Pointer(&data[0])), C.int64_t(len(data))); rc != 0 {
		return fmt.Errorf("llm: adapter tensor %s: its type cannot be written from float32", name)
	}
	if a.m.adapter == a {
		a.m.epoch++
	}
	return nil
}

// Tensor reads one adapter tensor back as float32.
func (a *Adapter) Tensor(name string) ([]float32, error) {
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	t, ok := a.tensors[name]
	if !ok || a.c == nil || a.m.model == nil {
		return nil, fmt.Errorf("llm: adapter %s has no tensor %q", a.path, name)
	}
	out := make([]float32, t.shape[0]*t.shape[1])
	if rc := C.vz_tensor_get_f32(t.ptr, (*C.float)(unsafe.Pointer(&out[0])), C.int64_t(len(out))); rc != 0 {
		return nil, fmt.Errorf("llm: adapter tensor %s: its type cannot be read as float32", name)
	}
	return out, nil
}

// Free detaches the adapter if attached and releases its memory.
func (a *Adapter) Free() {
	a.m.mu.Lock()
	defer a.m.mu.Unlock()
	a.freeLocked()
}

func (a *Adapter) freeLocked() {
	if a.c == nil {
		return
	}
	if a.m.ctx != nil && a.m.adapter == a {
		// detach before freeing: a graph must never see freed adapter tensors
		C.llama_rm_adapter_lora(a.m.ctx, a.c)
		a.m.adapter = nil
		a.m.epoch++
	}
	C.llama_adapter_lora_free(a.c)
	delete(a.m.loaded, a)
	a.c = nil
	a.tensors = nil
	log.Debug().Str("adapter", a.path).Msg("llm: adapter freed")
}
