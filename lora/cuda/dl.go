package cuda

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "csrc/vz_cuda.h"

// The library's functions, resolved with dlsym: the Go binary never links against CUDA, so it
// builds and runs on machines without a GPU or a toolkit.
typedef struct {
	void *h;
	int (*abi_version)(void);
	int (*probe)(int *, char *, int, int *, int *, size_t *, size_t *, char *, int);
	int (*create)(const vz_config *, vz_engine **, char *, int);
	void (*destroy)(vz_engine *);
	int (*set_weight)(vz_engine *, int, int, const float *, int64_t, char *, int);
	int (*set_weight_raw)(vz_engine *, int, int, int, const void *, int64_t, char *, int);
	int (*dequantize)(vz_engine *, int, const void *, int64_t, int64_t, float *, char *, int);
	int (*set_adapter)(vz_engine *, int, float, const uint8_t *, const float *, int64_t, char *, int);
	int (*input_rows)(vz_engine *, int, float **, char *, int);
	int (*run_begin)(vz_engine *, const vz_batch *, int, char *, int);
	int (*run_wait_layer)(vz_engine *, int, char *, int);
	int (*run_end)(vz_engine *, float *, char *, int);
	int (*gradients)(const vz_engine *, const float **, int64_t *);
	int (*release_workspace)(vz_engine *, char *, int);
	int64_t (*workspace_bytes)(const vz_engine *, const vz_batch *, int);
	int (*memory)(const vz_engine *, int64_t *, int64_t *, int64_t *, int64_t *);
} vz_lib;

static vz_lib lib;

#define VZ_SYM(field, name)                                                           \
	do {                                                                              \
		*(void **)(&lib.field) = dlsym(h, name);                                      \
		if (lib.field == NULL) {                                                      \
			snprintf(err, errlen, "%s: missing symbol %s", path, name);               \
			dlclose(h);                                                               \
			memset(&lib, 0, sizeof lib);                                              \
			return -1;                                                                \
		}                                                                             \
	} while (0)

static int vz_load(const char *path, char *err, int errlen) {
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		snprintf(err, errlen, "%s", dlerror());
		return -1;
	}
	VZ_SYM(abi_version, "vz_abi_version");
	VZ_SYM(probe, "vz_probe");
	VZ_SYM(create, "vz_create");
	VZ_SYM(destroy, "vz_destroy");
	VZ_SYM(set_weight, "vz_set_weight");
	VZ_SYM(set_weight_raw, "vz_set_weight_raw");
	VZ_SYM(dequantize, "vz_dequantize");
	VZ_SYM(set_adapter, "vz_set_adapter");
	VZ_SYM(input_rows, "vz_input_rows");
	VZ_SYM(run_begin, "vz_run_begin");
	VZ_SYM(run_wait_layer, "vz_run_wait_layer");
	VZ_SYM(run_end, "vz_run_end");
	VZ_SYM(gradients, "vz_gradients");
	VZ_SYM(release_workspace, "vz_release_workspace");
	VZ_SYM(workspace_bytes, "vz_workspace_bytes");
	VZ_SYM(memory, "vz_memory");
	if (lib.abi_version() != VZ_ABI_VERSION) {
		snprintf(err, errlen, "%s: ABI version %d, this binary needs %d (rebuild with make cuda)", path,
		         lib.abi_version(), VZ_ABI_VERSION);
		dlclose(h);
		memset(&lib, 0, sizeof lib);
		return -1;
	}
	lib.h = h;
	return 0;
}

static int vz_call_probe(int *n, char *name, int nl, int *ma, int *mi, size_t *fr, size_t *tot, char *err, int el) {
	return lib.probe(n, name, nl, ma, mi, fr, tot, err, el);
}
static int vz_call_create(const vz_config *c, vz_engine **e, char *err, int el) { return lib.create(c, e, err, el); }
static void vz_call_destroy(vz_engine *e) { lib.destroy(e); }
static int vz_call_set_weight(vz_engine *e, int l, int k, const float *d, int64_t n, char *err, int el) {
	return lib.set_weight(e, l, k, d, n, err, el);
}
static int vz_call_set_weight_raw(vz_engine *e, int l, int k, int t, const void *d, int64_t n, char *err, int el) {
	return lib.set_weight_raw(e, l, k, t, d, n, err, el);
}
static int vz_call_dequantize(vz_engine *e, int t, const void *d, int64_t nb, int64_t n, float *out, char *err, int el) {
	return lib.dequantize(e, t, d, nb, n, out, err, el);
}
static int vz_call_set_adapter(vz_engine *e, int r, float s, const uint8_t *p, const float *f, int64_t n, char *err, int el) {
	return lib.set_adapter(e, r, s, p, f, n, err, el);
}
static int vz_call_input_rows(vz_engine *e, int n, float **rows, char *err, int el) {
	return lib.input_rows(e, n, rows, err, el);
}
static int vz_call_run_begin(vz_engine *e, const vz_batch *b, int bw, char *err, int el) {
	return lib.run_begin(e, b, bw, err, el);
}
static int vz_call_run_wait_layer(vz_engine *e, int l, char *err, int el) { return lib.run_wait_layer(e, l, err, el); }
static int vz_call_run_end(vz_engine *e, float *lp, char *err, int el) { return lib.run_end(e, lp, err, el); }
static int vz_call_gradients(const vz_engine *e, const float **g, int64_t *n) { return lib.gradients(e, g, n); }
static int vz_call_release_workspace(vz_engine *e, char *err, int el) { return lib.release_workspace(e, err, el); }
static int64_t vz_call_workspace_bytes(const vz_engine *e, const vz_batch *b, int bw) {
	return lib.workspace_bytes(e, b, bw);
}
static int vz_call_memory(const vz_engine *e, int64_t *w, int64_t *a, int64_t *ws, int64_t *pk) {
	return lib.memory(e, w, a, ws, pk);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"unsafe"

	"github.com/vzlocal/vzlocal/lora"
)

// ErrNoLibrary, ErrNoDevice and ErrUnsupported classify why the CUDA engine cannot be used, so
// that a caller choosing an engine automatically can fall back to the CPU (errors.Is).
var (
	ErrNoLibrary   = errors.New("cuda: libvzlocal_cuda.so not loadable")
	ErrNoDevice    = errors.New("cuda: no usable GPU")
	ErrUnsupported = errors.New("cuda: model not supported by the CUDA engine")
)

const errLen = 1024

var (
	loadOnce sync.Once
	loadPath string
	loadErr  error
)

// LibraryName is the file `make cuda` builds (into bin/, next to bin/vzlocal).
const LibraryName = "libvzlocal_cuda.so"

// candidates lists where the library is looked for, in order: an explicit path, $VZLOCAL_CUDA_LIB,
// next to the executable, ../lib/vzlocal beside it, the repository's bin/ when running from a
// package directory (tests), and finally the dynamic loader's own search (LD_LIBRARY_PATH).
func candidates(explicit string) []string {
	if explicit != "" {
		return []string{explicit}
	}
	if p := os.Getenv("VZLOCAL_CUDA_LIB"); p != "" {
		return []string{p}
	}
	var out []string
	if exe, err := os.Executable(); err == nil {
		d := filepath.Dir(exe)
		out = append(out, filepath.Join(d, LibraryName), filepath.Join(d, "..", "lib", "vzlocal", LibraryName))
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				out = append(out, filepath.Join(d, "bin", LibraryName))
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return append(out, LibraryName)
}

// load dlopens the library once per process (the first explicit path wins).
func load(explicit string) (string, error) {
	loadOnce.Do(func() { loadPath, loadErr = tryLoad(candidates(explicit)) })
	return loadPath, loadErr
}

// tryLoad dlopens the first loadable path; on failure nothing is kept.
func tryLoad(paths []string) (string, error) {
	var msgs []string
	for _, p := range paths {
		if filepath.IsAbs(p) || filepath.Base(p) != p {
			if _, err := os.Stat(p); err != nil {
				msgs = append(msgs, p+": not found")
				continue
			}
		}
		cp := C.CString(p)
		buf := (*C.char)(C.calloc(errLen, 1))
		rc := C.vz_load(cp, buf, errLen)
		msg := C.GoString(buf)
		C.free(unsafe.Pointer(cp))
		C.free(unsafe.Pointer(buf))
		if rc == 0 {
			return p, nil
		}
		msgs = append(msgs, msg)
	}
	return "", fmt.Errorf("%w (build it with `make cuda`, or set VZLOCAL_CUDA_LIB): %v", ErrNoLibrary, msgs)
}

// cerr is a C message buffer for one call.
type cerr struct{ p *C.char }

func newCerr() cerr  { return cerr{(*C.char)(C.calloc(errLen, 1))} }
func (e cerr) free() { C.free(unsafe.Pointer(e.p)) }

// check turns a return code and message into a Go error.
func (e cerr) check(op string, rc C.int) error {
	if rc == 0 {
		return nil
	}
	msg := C.GoString(e.p)
	switch rc {
	case C.VZ_ERR_NODEVICE:
		return fmt.Errorf("%w: %s: %s", ErrNoDevice, op, msg)
	case C.VZ_ERR_ARG:
		return fmt.Errorf("cuda: %s: invalid argument: %s", op, msg)
	}
	return fmt.Errorf("cuda: %s: %s (code %d)", op, msg, int(rc))
}

// Device describes the first GPU.
type Device struct {
	Count        int
	Name         string
	Major, Minor int
	Free, Total  uint64
	Library      string
}

func (d Device) String() string {
	return fmt.Sprintf("%s (sm_%d%d, %.1f of %.1f GiB free; %d device(s); %s)", d.Name, d.Major, d.Minor,
		float64(d.Free)/(1<<30), float64(d.Total)/(1<<30), d.Count, d.Library)
}

// Probe loads the library and asks the CUDA runtime for the first device.
func Probe() (Device, error) {
	path, err := load("")
	if err != nil {
		return Device{}, err
	}
	return probe(path)
}

func probe(path string) (Device, error) {
	e := newCerr()
	defer e.free()
	var n, ma, mi C.int
	var fr, tot C.size_t
	name := (*C.char)(C.calloc(256, 1))
	defer C.free(unsafe.Pointer(name))
	if err := e.check("probe", C.vz_call_probe(&n, name, 256, &ma, &mi, &fr, &tot, e.p, errLen)); err != nil {
		return Device{}, err
	}
	return Device{Count: int(n), Name: C.GoString(name), Major: int(ma), Minor: int(mi), Free: uint64(fr),
		Total: uint64(tot), Library: path}, nil
}

// Available reports whether the CUDA engine can run here: the library loads and a GPU answers.
// The string describes the device, or says why not.
func Available() (bool, string) {
	d, err := Probe()
	if err != nil {
		return false, err.Error()
	}
	return true, d.String()
}

// The typed calls below are the only code outside the preamble that touches C; the engine
// (engine.go) holds the library's engine as an unsafe.Pointer.

// Weight kinds (vz_cuda.h): the seven LoRA targets in lora.Targets order, then the vectors.
const (
	wAttnNorm = C.VZ_W_ATTN_NORM
	wFFNNorm  = C.VZ_W_FFN_NORM
	wBq       = C.VZ_W_BQ
	wBk       = C.VZ_W_BK
	wBv       = C.VZ_W_BV
	wOutNorm  = C.VZ_W_OUT_NORM
	wOutput   = C.VZ_W_OUTPUT
	nTarget   = C.VZ_NTARGET
)

func cCreate(c lora.Config, o Options) (unsafe.Pointer, error) {
	cfg := C.vz_config{
		n_layer: C.int(c.NLayer), n_embd: C.int(c.NEmbd), n_head: C.int(c.NHead), n_head_kv: C.int(c.NHeadKV),
		head_dim: C.int(c.HeadDim), n_ff: C.int(c.NFF), n_vocab: C.int(c.NVocab), n_rot: C.int(c.NRot),
		rms_eps: C.float(c.RMSEps), precision: C.VZ_PREC_BF16, head_chunk: C.int(o.HeadChunk), device: C.int(o.Device),
		attention: C.VZ_ATTN_AUTO, keep_layers: C.int(o.KeepLayers),
	}
	switch o.Attention {
	case AttnGEMM:
		cfg.attention = C.VZ_ATTN_GEMM
	case AttnFlash:
		cfg.attention = C.VZ_ATTN_FLASH
	}
	if o.Precision == F32 {
		cfg.precision = C.VZ_PREC_F32
	}
	if c.Rope == lora.RopeNeox {
		cfg.rope_type = C.VZ_ROPE_NEOX
	}
	if c.HasQKVBias {
		cfg.has_qkv_bias = 1
	}
	e := newCerr()
	defer e.free()
	var h *C.vz_engine
	if err := e.check("create", C.vz_call_create(&cfg, &h, e.p, errLen)); err != nil {
		return nil, err
	}
	return unsafe.Pointer(h), nil
}

func cDestroy(h unsafe.Pointer) { C.vz_call_destroy((*C.vz_engine)(h)) }

func cSetWeight(h unsafe.Pointer, layer, kind int, data []float32) error {
	if len(data) == 0 {
		return fmt.Errorf("cuda: weight kind %d of layer %d is empty", kind, layer)
	}
	e := newCerr()
	defer e.free()
	return e.check(fmt.Sprintf("upload weight %d of layer %d", kind, layer),
		C.vz_call_set_weight((*C.vz_engine)(h), C.int(layer), C.int(kind), (*C.float)(&data[0]), C.int64_t(len(data)), e.p, errLen))
}

func cSetWeightRaw(h unsafe.Pointer, layer, kind int, ggmlType uint32, data []byte) error {
	if len(data) == 0 {
		return fmt.Errorf("cuda: raw weight kind %d of layer %d is empty", kind, layer)
	}
	e := newCerr()
	defer e.free()
	return e.check(fmt.Sprintf("upload raw weight %d of layer %d", kind, layer),
		C.vz_call_set_weight_raw((*C.vz_engine)(h), C.int(layer), C.int(kind), C.int(ggmlType), unsafe.Pointer(&data[0]),
			C.int64_t(len(data)), e.p, errLen))
}

// cDequantize expands n values of a ggml type to fp32 on the GPU.
func cDequantize(h unsafe.Pointer, ggmlType uint32, data []byte, out []float32) error {
	if len(data) == 0 || len(out) == 0 {
		return fmt.Errorf("cuda: dequantize: empty tensor")
	}
	e := newCerr()
	defer e.free()
	return e.check("dequantize", C.vz_call_dequantize((*C.vz_engine)(h), C.int(ggmlType), unsafe.Pointer(&data[0]),
		C.int64_t(len(data)), C.int64_t(len(out)), (*C.float)(&out[0]), e.p, errLen))
}

// rawTypes are the ggml types the library dequantizes on the GPU (vz_cuda.h VZ_GGML_*).
var rawTypes = map[uint32]bool{C.VZ_GGML_F32: true, C.VZ_GGML_F16: true, C.VZ_GGML_BF16: true,
	C.VZ_GGML_Q8_0: true, C.VZ_GGML_Q4_K: true, C.VZ_GGML_Q6_K: true}

func cSetAdapter(h unsafe.Pointer, rank int, scale float32, present []uint8, flat []float32) error {
	e := newCerr()
	defer e.free()
	var pp *C.uint8_t
	var fp *C.float
	if len(present) > 0 {
		pp = (*C.uint8_t)(&present[0])
	}
	if len(flat) > 0 {
		fp = (*C.float)(&flat[0])
	}
	return e.check("set adapter", C.vz_call_set_adapter((*C.vz_engine)(h), C.int(rank), C.float(scale), pp, fp,
		C.int64_t(len(flat)), e.p, errLen))
}

// cBatch fills a vz_batch with pointers into pk's (pinned) slices.
func cBatch(pk *packed, tw []float32, pin *runtime.Pinner) C.vz_batch {
	ptr := func(p unsafe.Pointer) unsafe.Pointer { pin.Pin(p); return p }
	b := C.vz_batch{n: C.int(pk.n), n_seg: C.int(len(pk.seg) / 3), n_target: C.int(len(pk.tRow)), inv_temp: C.float(pk.invTemp)}
	b.seg = (*C.int32_t)(ptr(unsafe.Pointer(&pk.seg[0])))
	if len(pk.x0) > 0 {
		b.x0 = (*C.float)(ptr(unsafe.Pointer(&pk.x0[0])))
	}
	if len(pk.cos) > 0 {
		b.rope_cos = (*C.float)(ptr(unsafe.Pointer(&pk.cos[0])))
		b.rope_sin = (*C.float)(ptr(unsafe.Pointer(&pk.sin[0])))
	}
	if len(pk.tRow) > 0 {
		b.t_row = (*C.int32_t)(ptr(unsafe.Pointer(&pk.tRow[0])))
		b.t_tok = (*C.int32_t)(ptr(unsafe.Pointer(&pk.tTok[0])))
		if tw != nil {
			b.t_w = (*C.float)(ptr(unsafe.Pointer(&tw[0])))
		}
	}
	return b
}

// cInputRows returns the engine's page-locked buffer for n input rows of embd floats (vz_batch.x0),
// valid until the next call or the engine's end.
func cInputRows(h unsafe.Pointer, n, embd int) ([]float32, error) {
	e := newCerr()
	defer e.free()
	var p *C.float
	if err := e.check("input rows", C.vz_call_input_rows((*C.vz_engine)(h), C.int(n), &p, e.p, errLen)); err != nil {
		return nil, err
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(p)), n*embd), nil
}

// cRun runs one pass over a packed batch: tw holds the per-target loss weights, logp receives the
// per-target log-probs. With layerDone set it is a backward: layerDone(l, grads) is called for each
// layer from the last to the first as soon as that layer's gradients have reached grads (the
// engine's page-locked gradient buffer in vz_set_adapter's flat layout, valid until the next pass
// or adapter; layers below l are still running on the GPU).
func cRun(h unsafe.Pointer, pk *packed, tw, logp []float32, layers int, layerDone func(l int, grads []float32)) error {
	err := cRunBegin(h, pk, tw, layerDone != nil)
	if err != nil {
		return err
	}
	if layerDone != nil {
		grads := cGradients(h)
		for l := layers - 1; l >= 0 && err == nil; l-- {
			if err = cRunWaitLayer(h, l); err == nil {
				layerDone(l, grads)
			}
		}
	}
	// vz_run_end follows every begin that succeeded, also after a failed wait.
	if endErr := cRunEnd(h, logp); err == nil {
		err = endErr
	}
	return err
}

// cRunBegin queues a pass (vz_run_begin).
func cRunBegin(h unsafe.Pointer, pk *packed, tw []float32, backward bool) error {
	e := newCerr()
	defer e.free()
	var pin runtime.Pinner
	defer pin.Unpin() // the library has read (or staged) every array but the page-locked x0
	b := cBatch(pk, tw, &pin)
	op, bw := "log-probs", C.int(0)
	if backward {
		op, bw = "backward", 1
	}
	return e.check(op, C.vz_call_run_begin((*C.vz_engine)(h), &b, bw, e.p, errLen))
}

// cRunWaitLayer returns once layer l's gradients are in cGradients's buffer.
func cRunWaitLayer(h unsafe.Pointer, l int) error {
	e := newCerr()
	defer e.free()
	return e.check("backward", C.vz_call_run_wait_layer((*C.vz_engine)(h), C.int(l), e.p, errLen))
}

// cRunEnd waits for the pass and writes the log-probs.
func cRunEnd(h unsafe.Pointer, logp []float32) error {
	e := newCerr()
	defer e.free()
	var lp *C.float
	if len(logp) > 0 {
		lp = (*C.float)(&logp[0])
	}
	return e.check("pass", C.vz_call_run_end((*C.vz_engine)(h), lp, e.p, errLen))
}

// cGradients is the library's page-locked gradient buffer (vz_gradients), read in place.
func cGradients(h unsafe.Pointer) []float32 {
	var gp *C.float
	var n C.int64_t
	C.vz_call_gradients((*C.vz_engine)(h), &gp, &n)
	if gp == nil {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(gp)), int(n))
}

func cReleaseWorkspace(h unsafe.Pointer) error {
	e := newCerr()
	defer e.free()
	return e.check("release workspace", C.vz_call_release_workspace((*C.vz_engine)(h), e.p, errLen))
}

func cWorkspace(h unsafe.Pointer, pk *packed, backward bool) int64 {
	var pin runtime.Pinner
	defer pin.Unpin()
	b := cBatch(pk, nil, &pin)
	bw := C.int(0)
	if backward {
		bw = 1
	}
	return int64(C.vz_call_workspace_bytes((*C.vz_engine)(h), &b, bw))
}

// Memory is the engine's device memory by purpose, in bytes.
type Memory struct {
	Weights, Adapter, Workspace, Peak int64
}

func cMemory(h unsafe.Pointer) Memory {
	var w, a, ws, pk C.int64_t
	C.vz_call_memory((*C.vz_engine)(h), &w, &a, &ws, &pk)
	return Memory{int64(w), int64(a), int64(ws), int64(pk)}
}
