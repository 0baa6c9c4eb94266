package llm

/*
#include <stdlib.h>
#include "llama.h"
#include "mtmd.h"
#include "mtmd-helper.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// ImageRow marks an image embedding row in Prompt.Tokens.
const ImageRow int32 = -1

// Prompt is a tokenized prompt, exactly as it is fed to the model: text token ids, and ImageRow
// wherever an image embedding row goes. It is plain data: it can be stored with a trajectory and
// scored again later.
type Prompt struct {
	Tokens []int32
	Images []ImageSpan
	NPos   int // positions the prompt takes; a completion's first token sits at NPos
}

// ImageSpan is a run of image embedding rows inside Prompt.Tokens.
type ImageSpan struct {
	Index  int       // index in Tokens of the first row
	Rows   int       // number of rows
	Pos    int       // position of the first row (for M-RoPE, the temporal position of all rows)
	NPos   int       // positions the span advances: Rows, or max(NX, NY) for M-RoPE models
	NX, NY int       // grid of the rows (row r sits at x = r % NX, y = r / NX)
	Key    string    // ImageKey of the image, "#" and the chunk index within that image
	Embd   []float32 // Rows × Info().NEmbdInp projector outputs (shared with the cache; do not modify)
}

// Positions returns the position of every entry of Tokens. For M-RoPE models an image row's
// entry is its temporal position; its y and x are Pos + r/NX and Pos + r%NX.
func (p *Prompt) Positions(mrope bool) []int32 {
	out := make([]int32, len(p.Tokens))
	pos, i := 0, 0
	for _, sp := range p.Images {
		for ; i < sp.Index; i++ {
			out[i] = int32(pos)
			pos++
		}
		for r := range sp.Rows {
			if mrope {
				out[i+r] = int32(sp.Pos)
			} else {
				out[i+r] = int32(sp.Pos + r)
			}
		}
		i += sp.Rows
		pos = sp.Pos + sp.NPos
	}
	for ; i < len(p.Tokens); i++ {
		out[i] = int32(pos)
		pos++
	}
	return out
}

// Tokenize turns a formatted prompt (see FormatChat) and its images into model input. The text
// must contain MediaMarker() once per image, in order; each image is given as encoded bytes
// (PNG, JPEG, ...). The whole text goes through mtmd, which adds the model's own begin/end-of-image
// tokens and BOS where the model wants them. Image embeddings are computed once per image and
// cached.
func (m *Model) Tokenize(text string, images ...[]byte) (*Prompt, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.model == nil {
		return nil, errClosed
	}
	if m.mtmd == nil {
		if len(images) > 0 {
			return nil, fmt.Errorf("llm: Tokenize: %d images given but the model was loaded without an mmproj", len(images))
		}
		toks, err := m.tokenizeText(text, true)
		if err != nil {
			return nil, err
		}
		return &Prompt{Tokens: toks, NPos: len(toks)}, nil
	}
	if i := strings.IndexByte(text, 0); i >= 0 {
		// mtmd takes a C string: everything after the NUL would be dropped silently
		return nil, fmt.Errorf("llm: Tokenize: the text has a NUL byte at offset %d", i)
	}
	if n := strings.Count(text, MediaMarker()); n != len(images) {
		return nil, fmt.Errorf("llm: Tokenize: the text has %d image markers %s but %d images were given", n, MediaMarker(), len(images))
	}
	return m.tokenizeMultimodal(text, images)
}

func (m *Model) tokenizeMultimodal(text string, images [][]byte) (*Prompt, error) {
	bitmaps := make([]*C.mtmd_bitmap, len(images))
	defer func() {
		for _, b := range bitmaps {
			if b != nil {
				C.mtmd_bitmap_free(b)
			}
		}
	}()
	for i, img := range images {
		if len(img) == 0 {
			return nil, fmt.Errorf("llm: Tokenize: image %d is empty", i)
		}
		cimg := C.CBytes(img)
		bitmaps[i] = C.mtmd_helper_bitmap_init_from_buf(m.mtmd, (*C.uchar)(cimg), C.size_t(len(img)))
		C.free(cimg)
		if bitmaps[i] == nil {
			return nil, fmt.Errorf("llm: Tokenize: image %d (%d bytes) cannot be decoded: %s", i, len(img), takeLogErrors())
		}
		cid := C.CString(ImageKey(img))
		C.mtmd_bitmap_set_id(bitmaps[i], cid)
		C.free(unsafe.Pointer(cid))
	}
	ctext := C.CString(text)
	defer C.free(unsafe.Pointer(ctext))
	in := C.mtmd_input_text{text: ctext, add_special: true, parse_special: true}
	chunks := C.mtmd_input_chunks_init()
	defer C.mtmd_input_chunks_free(chunks)
	var bp **C.mtmd_bitmap
	if len(bitmaps) > 0 {
		bp = (**C.mtmd_bitmap)(C.malloc(C.size_t(len(bitmaps)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
		defer C.free(unsafe.Pointer(bp))
		copy(unsafe.Slice(bp, len(bitmaps)), bitmaps)
	}
	if rc := C.mtmd_tokenize(m.mtmd, chunks, &in, bp, C.size_t(len(bitmaps))); rc != 0 {
		return nil, fmt.Errorf("llm: Tokenize: mtmd_tokenize failed (code %d): %s", int(rc), takeLogErrors())
	}

	p := &Prompt{}
	seen := map[string]int{} // image chunks met so far per image
	for i := range int(C.mtmd_input_chunks_size(chunks)) {
		ch := C.mtmd_input_chunks_get(chunks, C.size_t(i))
		switch C.mtmd_input_chunk_get_type(ch) {
		case C.MTMD_INPUT_CHUNK_TYPE_TEXT:
			var n C.size_t
			toks := C.mtmd_input_chunk_get_tokens_text(ch, &n)
			for _, t := range unsafe.Slice(toks, int(n)) {
				p.Tokens = append(p.Tokens, int32(t))
			}
			p.NPos += int(n)
		case C.MTMD_INPUT_CHUNK_TYPE_IMAGE:
			id := C.GoString(C.mtmd_input_chunk_get_id(ch))
			key := fmt.Sprintf("%s#%d", id, seen[id])
			seen[id]++
			it := C.mtmd_input_chunk_get_tokens_image(ch)
			sp := ImageSpan{
				Index: len(p.Tokens),
				Rows:  int(C.mtmd_input_chunk_get_n_tokens(ch)),
				Pos:   p.NPos,
				NPos:  int(C.mtmd_input_chunk_get_n_pos(ch)),
				NX:    int(C.mtmd_image_tokens_get_nx(it)),
				NY:    int(C.mtmd_image_tokens_get_ny(it)),
				Key:   key,
			}
			embd, err := m.encodeChunk(ch, key, sp.Rows)
			if err != nil {
				return nil, err
			}
			sp.Embd = embd
			for range sp.Rows {
				p.Tokens = append(p.Tokens, ImageRow)
			}
			p.NPos += sp.NPos
			p.Images = append(p.Images, sp)
		default:
			return nil, errors.New("llm: Tokenize: audio input is not supported")
		}
	}
	return p, nil
}

// encodeChunk returns the projector output rows of an image chunk, from the cache or by running
// the vision encoder.
func (m *Model) encodeChunk(ch *C.mtmd_input_chunk, key string, rows int) ([]float32, error) {
	if e, ok := m.images.get(key); ok && len(e) == rows*m.info.NEmbdInp {
		return e, nil
	}
	if rc := C.mtmd_encode_chunk(m.mtmd, ch); rc != 0 {
		return nil, fmt.Errorf("llm: encoding image %s failed (code %d): %s", key, int(rc), takeLogErrors())
	}
	out := C.mtmd_get_output_embd(m.mtmd)
	if out == nil {
		return nil, fmt.Errorf("llm: encoding image %s gave no output", key)
	}
	e := make([]float32, rows*m.info.NEmbdInp)
	copy(e, unsafe.Slice((*float32)(unsafe.Pointer(out)), len(e)))
	m.images.put(key, e)
	return e, nil
}

// TokenizeText tokenizes plain text, parsing special tokens such as <|im_end|>.
func (m *Model) TokenizeText(text string, addSpecial bool) ([]int32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.model == nil {
		return nil, errClosed
	}
	return m.tokenizeText(text, addSpecial)
}

func (m *Model) tokenizeText(text string, addSpecial bool) ([]int32, error) {
	ctext := C.CString(text)
	defer C.free(unsafe.Pointer(ctext))
	buf := make([]C.llama_token, len(text)+8)
	n := C.llama_tokenize(m.vocab, ctext, C.int32_t(len(text)), &buf[0], C.int32_t(len(buf)), C.bool(addSpecial), true)
	if n < 0 {
		buf = make([]C.llama_token, -n)
		n = C.llama_tokenize(m.vocab, ctext, C.int32_t(len(text)), &buf[0], C.int32_t(len(buf)), C.bool(addSpecial), true)
	}
	if n < 0 {
		return nil, fmt.Errorf("llm: tokenizing %d bytes failed", len(text))
	}
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(buf[i])
	}
	return out, nil
}

// Detokenize renders token ids as text; control tokens (BOS, <|im_end|>, ...) and ids outside
// the vocabulary (such as the ImageRow entries of a Prompt) are left out.
func (m *Model) Detokenize(tokens []int32) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.detokenize(tokens)
}

func (m *Model) detokenize(tokens []int32) string {
	if m.model == nil {
		return ""
	}
	// llama.cpp looks ids up with std::vector::at: an id outside the vocabulary throws through
	// the C API and aborts the process.
	ctoks := make([]C.llama_token, 0, len(tokens))
	for _, t := range tokens {
		if t >= 0 && int(t) < m.info.NVocab {
			ctoks = append(ctoks, C.llama_token(t))
		}
	}
	if len(ctoks) == 0 {
		return ""
	}
	buf := make([]byte, 8*len(ctoks)+16)
	n := C.llama_detokenize(m.vocab, &ctoks[0], C.int32_t(len(ctoks)), (*C.char)(unsafe.Pointer(&buf[0])), C.int32_t(len(buf)), false, false)
	if n < 0 {
		buf = make([]byte, -n)
		n = C.llama_detokenize(m.vocab, &ctoks[0], C.int32_t(len(ctoks)), (*C.char)(unsafe.Pointer(&buf[0])), C.int32_t(len(buf)), false, false)
	}
	if n < 0 {
		return ""
	}
	return string(buf[:n])
}

// IsEOG reports whether a token ends generation (EOS, <|im_end|>, <end_of_turn>, ...).
func (m *Model) IsEOG(token int32) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.isEOG(token)
}

func (m *Model) isEOG(token int32) bool {
	if m.model == nil || token < 0 || int(token) >= m.info.NVocab {
		return false
	}
	return bool(C.llama_vocab_is_eog(m.vocab, C.llama_token(token)))
}
