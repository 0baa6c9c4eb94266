package llm

/*
#include <stdlib.h>
#include "llama.h"
#include "mtmd.h"
#include "mtmd-helper.h"
*/
import "C"

import (
	"fmt"
	"slices"
	"unsafe"
)

// referenceLastLogits evaluates text and images the way llama.cpp's own tools do
// (mtmd_tokenize, then mtmd_helper_eval_chunks, which encodes every image again) and returns the
// logits after the last token and the positions used. It is the reference that the engine's own
// path (cached image rows decoded by vz_decode_embd) is checked against.
func (m *Model) referenceLastLogits(text string, images [][]byte) ([]float32, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mtmd == nil {
		return nil, 0, fmt.Errorf("llm: no mmproj loaded")
	}
	m.cached.valid = false
	C.llama_memory_clear(m.memory(), true)
	bitmaps := make([]*C.mtmd_bitmap, len(images))
	for i, img := range images {
		cimg := C.CBytes(img)
		bitmaps[i] = C.mtmd_helper_bitmap_init_from_buf(m.mtmd, (*C.uchar)(cimg), C.size_t(len(img)))
		C.free(cimg)
		if bitmaps[i] == nil {
			return nil, 0, fmt.Errorf("llm: image %d cannot be decoded", i)
		}
		defer C.mtmd_bitmap_free(bitmaps[i])
	}
	ctext := C.CString(text)
	defer C.free(unsafe.Pointer(ctext))
	in := C.mtmd_input_text{text: ctext, add_special: true, parse_special: true}
	chunks := C.mtmd_input_chunks_init()
	defer C.mtmd_input_chunks_free(chunks)
	bp := (**C.mtmd_bitmap)(C.malloc(C.size_t(max(1, len(bitmaps))) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(bp))
	copy(unsafe.Slice(bp, len(bitmaps)), bitmaps)
	if rc := C.mtmd_tokenize(m.mtmd, chunks, &in, bp, C.size_t(len(bitmaps))); rc != 0 {
		return nil, 0, fmt.Errorf("llm: mtmd_tokenize failed (code %d)", int(rc))
	}
	var npast C.llama_pos
	if rc := C.mtmd_helper_eval_chunks(m.mtmd, m.ctx, chunks, 0, promptSeq, C.int32_t(m.opts.BatchSize), true, &npast); rc != 0 {
		return nil, 0, fmt.Errorf("llm: mtmd_helper_eval_chunks failed (code %d)", int(rc))
	}
	last := slices.Clone(m.logitsAt(-1))
	C.llama_memory_clear(m.memory(), true)
	return last, int(npast), nil
}
