// Package ggmlquant is ggml's own (de)quantization from Go: the gradient engine reads base weights
// with it so that it sees exactly the numbers llama.cpp computes with, and the merged export
// writes with it so that a file holds exactly the bytes llama.cpp's quantize tool would write.
package ggmlquant

/*
#include <stdint.h>
#include "ggml.h"

static int vz_to_float(int t, const void *src, float *dst, int64_t n) {
	const struct ggml_type_traits *tr = ggml_get_type_traits((enum ggml_type)t);
	if (tr == NULL || tr->to_float == NULL) return -1;
	tr->to_float(src, dst, n);
	return 0;
}
*/
import "C"

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
	"unsafe"

	// Links ggml (through llama.cpp).
	_ "github.com/ollama/ollama/llama"
)

// GGML tensor types (ggml_type values) real models ship.
const (
	TypeF32  uint32 = 0
	TypeF16  uint32 = 1
	TypeQ4_0 uint32 = 2
	TypeQ4_1 uint32 = 3
	TypeQ5_0 uint32 = 6
	TypeQ5_1 uint32 = 7
	TypeQ8_0 uint32 = 8
	TypeQ2_K uint32 = 10
	TypeQ3_K uint32 = 11
	TypeQ4_K uint32 = 12
	TypeQ5_K uint32 = 13
	TypeQ6_K uint32 = 14
	TypeBF16 uint32 = 30
)

// supported are the types read and written here: those llama.cpp's quantize tool produces
// without an importance matrix, and the float types.
var supported = map[uint32]bool{
	TypeF32: true, TypeF16: true, TypeBF16: true, TypeQ4_0: true, TypeQ4_1: true, TypeQ5_0: true,
	TypeQ5_1: true, TypeQ8_0: true, TypeQ2_K: true, TypeQ3_K: true, TypeQ4_K: true, TypeQ5_K: true,
	TypeQ6_K: true,
}

// Supported reports whether t can be dequantized and quantized here.
func Supported(t uint32) bool { return supported[t] }

// Known reports whether t is a ggml type this build knows (so its sizes can be computed).
func Known(t uint32) bool { return t < C.GGML_TYPE_COUNT && C.ggml_blck_size(C.enum_ggml_type(t)) > 0 }

// TypeName is ggml's name of a tensor type ("q4_K"), or a number for an unknown one.
func TypeName(t uint32) string {
	if t >= C.GGML_TYPE_COUNT {
		return fmt.Sprintf("type(%d)", t)
	}
	return C.GoString(C.ggml_type_name(C.enum_ggml_type(t)))
}

// BlockSize is the number of values per block of type t.
func BlockSize(t uint32) int64 { return int64(C.ggml_blck_size(C.enum_ggml_type(t))) }

// RowBytes is the size in bytes of n values of type t (ggml_row_size); n must be a whole number
// of blocks.
func RowBytes(t uint32, n int64) int64 {
	return int64(C.ggml_row_size(C.enum_ggml_type(t), C.int64_t(n)))
}

// Dequantize converts len(dst) values of type t from the start of src with ggml's to_float.
func Dequantize(t uint32, src []byte, dst []float32) error {
	n := int64(len(dst))
	if n == 0 {
		return nil
	}
	if !supported[t] {
		return fmt.Errorf("cannot dequantize tensor type %s", TypeName(t))
	}
	if n%BlockSize(t) != 0 {
		return fmt.Errorf("%d values is not a whole number of %s blocks of %d", n, TypeName(t), BlockSize(t))
	}
	if need := RowBytes(t, n); int64(len(src)) < need {
		return fmt.Errorf("%s data has %d bytes, need %d", TypeName(t), len(src), need)
	}
	if t == TypeF32 { // ggml has no to_float for its own float type: a little-endian copy
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		return nil
	}
	if C.vz_to_float(C.int(t), unsafe.Pointer(&src[0]), (*C.float)(unsafe.Pointer(&dst[0])), C.int64_t(n)) != 0 {
		return fmt.Errorf("ggml has no dequantizer for %s", TypeName(t))
	}
	return nil
}

// Quantize converts a rows×perRow matrix to type t with ggml_quantize_chunk (no importance
// matrix, as llama.cpp's quantize tool without --imatrix). K-quants are slow (tens of MB/s), so
// row ranges are quantized in parallel; the bytes do not depend on the split.
func Quantize(t uint32, src []float32, rows, perRow int64) ([]byte, error) {
	if !supported[t] {
		return nil, fmt.Errorf("cannot quantize to %s", TypeName(t))
	}
	if rows*perRow != int64(len(src)) || rows < 0 {
		return nil, fmt.Errorf("quantize: %d values for %d×%d", len(src), rows, perRow)
	}
	if perRow%BlockSize(t) != 0 {
		return nil, fmt.Errorf("rows of %d values cannot be stored as %s (blocks of %d)", perRow, TypeName(t), BlockSize(t))
	}
	if C.ggml_quantize_requires_imatrix(C.enum_ggml_type(t)) {
		return nil, fmt.Errorf("%s needs an importance matrix", TypeName(t))
	}
	rowSize := RowBytes(t, perRow)
	dst := make([]byte, rows*rowSize)
	if rows == 0 {
		return dst, nil
	}
	workers := int64(runtime.GOMAXPROCS(0))
	per := (rows + workers - 1) / workers
	var wg sync.WaitGroup
	for r0 := int64(0); r0 < rows; r0 += per {
		n := min(per, rows-r0)
		wg.Add(1)
		go func(r0, n int64) {
			defer wg.Done()
			// ggml_quantize_chunk takes the start of the whole matrix and writes row r0 at
			// dst + r0*rowSize (cgo-notes §1).
			C.ggml_quantize_chunk(C.enum_ggml_type(t), (*C.float)(unsafe.Pointer(&src[0])), unsafe.Pointer(&dst[0]),
				C.int64_t(r0*perRow), C.int64_t(n), C.int64_t(perRow), nil)
		}(r0, n)
	}
	wg.Wait()
	return dst, nil
}
