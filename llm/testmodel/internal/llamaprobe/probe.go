// Package llamaprobe exposes the few llama.cpp and mtmd calls the testmodel tests need and the Go
// package github.com/ollama/ollama/llama lacks: model metadata, the rope type, token attributes, the
// built-in chat template formatter, and an mtmd context with 1 thread whose chunk layout can be
// inspected. It is cgo, so it lives outside the _test files (cgo is not allowed there).
package llamaprobe

/*
#include <stdlib.h>
#include "llama.h"
#include "mtmd.h"
#include "mtmd-helper.h"
#include <stdio.h>

static void llamaprobe_quiet(enum ggml_log_level level, const char * text, void * user_data) {
	(void)user_data;
	if (level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR) {
		fputs(text, stderr);
	}
}
static void llamaprobe_quiet_mtmd(void) { mtmd_helper_log_set(llamaprobe_quiet, NULL); }
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/ollama/ollama/llama"
)

// rawModel returns the C model behind a *llama.Model. The Go type keeps it in its first (unexported)
// field in v0.17.4 (llama-cpp-notes.md §1.6).
func rawModel(m *llama.Model) *C.struct_llama_model {
	return *(**C.struct_llama_model)(unsafe.Pointer(m))
}

// RopeType is llama_model_rope_type: 0 NORM, 2 NEOX, 8 MROPE.
func RopeType(m *llama.Model) int { return int(C.llama_model_rope_type(rawModel(m))) }

// MetaString returns a metadata value as text, or ok=false when the key is absent.
func MetaString(m *llama.Model, key string) (string, bool) {
	k := C.CString(key)
	defer C.free(unsafe.Pointer(k))
	buf := make([]byte, 4096)
	n := C.llama_model_meta_val_str(rawModel(m), k, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	if n < 0 {
		return "", false
	}
	return string(buf[:min(int(n), len(buf)-1)]), true
}

// ChatTemplate returns the model's default chat template, or ok=false when it has none.
func ChatTemplate(m *llama.Model) (string, bool) {
	t := C.llama_model_chat_template(rawModel(m), nil)
	if t == nil {
		return "", false
	}
	return C.GoString(t), true
}

// IsControl reports whether the token has the CONTROL attribute.
func IsControl(m *llama.Model, id int) bool {
	vocab := C.llama_model_get_vocab(rawModel(m))
	return C.llama_vocab_get_attr(vocab, C.llama_token(id))&C.LLAMA_TOKEN_ATTR_CONTROL != 0
}

// Message is one chat message.
type Message struct{ Role, Content string }

// ApplyChatTemplate formats messages with llama.cpp's built-in formatter for the given template
// (detected by substring, not rendered as Jinja).
func ApplyChatTemplate(tmpl string, msgs []Message, addAssistant bool) (string, error) {
	ct := C.CString(tmpl)
	defer C.free(unsafe.Pointer(ct))
	cmsgs := (*[1 << 16]C.struct_llama_chat_message)(C.malloc(C.size_t(len(msgs)+1) * C.size_t(unsafe.Sizeof(C.struct_llama_chat_message{}))))
	defer C.free(unsafe.Pointer(cmsgs))
	for i, m := range msgs {
		cmsgs[i].role = C.CString(m.Role)
		cmsgs[i].content = C.CString(m.Content)
		defer C.free(unsafe.Pointer(cmsgs[i].role))
		defer C.free(unsafe.Pointer(cmsgs[i].content))
	}
	size := 1024
	for {
		buf := (*C.char)(C.malloc(C.size_t(size)))
		n := C.llama_chat_apply_template(ct, &cmsgs[0], C.size_t(len(msgs)), C.bool(addAssistant), buf, C.int32_t(size))
		out := C.GoStringN(buf, C.int(min(int(n), size)))
		C.free(unsafe.Pointer(buf))
		switch {
		case n < 0:
			return "", errors.New("llamaprobe: chat template not supported by llama.cpp")
		case int(n) <= size:
			return out, nil
		}
		size = int(n) + 1
	}
}

// QuietMtmdLogs limits the mtmd/clip log to warnings and errors (the default prints every hparam).
// It is process-wide.
func QuietMtmdLogs() { C.llamaprobe_quiet_mtmd() }

// MediaMarker is mtmd's default image marker, "<__media__>".
func MediaMarker() string { return C.GoString(C.mtmd_default_marker()) }

// Mtmd is an mtmd context created with 1 thread and no GPU (the Go package always uses 4 threads,
// which collapse on a busy 2-core machine; tiny-models.md §7.4).
type Mtmd struct {
	c    *C.mtmd_context
	embd int // text model width: the width of each image embedding row
}

// NewMtmd loads the mmproj for the model.
func NewMtmd(m *llama.Model, mmproj string) (*Mtmd, error) {
	p := C.CString(mmproj)
	defer C.free(unsafe.Pointer(p))
	params := C.mtmd_context_params_default()
	params.n_threads = 1
	params.use_gpu = false
	params.print_timings = false
	c := C.mtmd_init_from_file(p, rawModel(m), params)
	if c == nil {
		return nil, fmt.Errorf("llamaprobe: mtmd could not load %s", mmproj)
	}
	return &Mtmd{c: c, embd: int(C.llama_model_n_embd(rawModel(m)))}, nil
}

// Free releases the context.
func (t *Mtmd) Free() { C.mtmd_free(t.c) }

// UsesMRoPE and NonCausal report how images must be decoded.
func (t *Mtmd) UsesMRoPE() bool { return bool(C.mtmd_decode_use_mrope(t.c)) }
func (t *Mtmd) NonCausal() bool { return bool(C.mtmd_decode_use_non_causal(t.c)) }

// Chunk is one piece of a tokenized multimodal prompt: text tokens or one image (tile).
type Chunk struct {
	Image         bool
	Tokens        []int // text chunks
	NTokens, NPos int
	NX, NY        int       // image chunks: the embedding grid
	Embd          []float32 // image chunks: NTokens rows of the text model width
}

// Tokenize runs mtmd_tokenize on prompt (which holds one MediaMarker per image) with the given PNG
// or JPEG images, with special tokens added and parsed, and encodes every image chunk.
func (t *Mtmd) Tokenize(prompt string, images ...[]byte) ([]Chunk, error) {
	var bitmaps []*C.mtmd_bitmap
	defer func() {
		for _, b := range bitmaps {
			C.mtmd_bitmap_free(b)
		}
	}()
	for i, img := range images {
		if len(img) == 0 {
			return nil, fmt.Errorf("llamaprobe: image %d is empty", i)
		}
		buf := C.CBytes(img)
		b := C.mtmd_helper_bitmap_init_from_buf(t.c, (*C.uchar)(buf), C.size_t(len(img)))
		C.free(buf)
		if b == nil {
			return nil, fmt.Errorf("llamaprobe: image %d could not be decoded", i)
		}
		bitmaps = append(bitmaps, b)
	}
	ctext := C.CString(prompt)
	defer C.free(unsafe.Pointer(ctext))
	in := C.mtmd_input_text{text: ctext, add_special: true, parse_special: true}
	chunks := C.mtmd_input_chunks_init()
	defer C.mtmd_input_chunks_free(chunks)
	var bp **C.mtmd_bitmap
	cbm := (*[1 << 10]*C.mtmd_bitmap)(C.malloc(C.size_t(len(bitmaps)+1) * C.size_t(unsafe.Sizeof(bp))))
	defer C.free(unsafe.Pointer(cbm))
	copy(cbm[:], bitmaps)
	if rc := C.mtmd_tokenize(t.c, chunks, &in, (**C.mtmd_bitmap)(unsafe.Pointer(&cbm[0])), C.size_t(len(bitmaps))); rc != 0 {
		return nil, fmt.Errorf("llamaprobe: mtmd_tokenize returned %d", rc)
	}
	var out []Chunk
	for i := range int(C.mtmd_input_chunks_size(chunks)) {
		ch := C.mtmd_input_chunks_get(chunks, C.size_t(i))
		c := Chunk{NTokens: int(C.mtmd_input_chunk_get_n_tokens(ch)), NPos: int(C.mtmd_input_chunk_get_n_pos(ch))}
		switch C.mtmd_input_chunk_get_type(ch) {
		case C.MTMD_INPUT_CHUNK_TYPE_TEXT:
			var n C.size_t
			toks := C.mtmd_input_chunk_get_tokens_text(ch, &n)
			for _, tk := range unsafe.Slice(toks, int(n)) {
				c.Tokens = append(c.Tokens, int(tk))
			}
		case C.MTMD_INPUT_CHUNK_TYPE_IMAGE:
			c.Image = true
			img := C.mtmd_input_chunk_get_tokens_image(ch)
			c.NX, c.NY = int(C.mtmd_image_tokens_get_nx(img)), int(C.mtmd_image_tokens_get_ny(img))
			if rc := C.mtmd_encode_chunk(t.c, ch); rc != 0 {
				return nil, fmt.Errorf("llamaprobe: mtmd_encode_chunk returned %d", rc)
			}
			e := C.mtmd_get_output_embd(t.c)
			if e == nil {
				return nil, errors.New("llamaprobe: no image embeddings after encoding")
			}
			c.Embd = append([]float32(nil), unsafe.Slice((*float32)(unsafe.Pointer(e)), c.NTokens*t.embd)...)
		default:
			return nil, fmt.Errorf("llamaprobe: unexpected chunk type %d", C.mtmd_input_chunk_get_type(ch))
		}
		out = append(out, c)
	}
	return out, nil
}
