package lora

/*
#include <stdlib.h>
#include "ggml.h"

static int vz_to_float(int type, const void *src, float *dst, int64_t n) {
	const struct ggml_type_traits *tr = ggml_get_type_traits((enum ggml_type)type);
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
	"unsafe"

	// Links ggml (and llama.cpp): our cgo calls ggml's own dequantizers so that the engine sees
	// exactly the numbers llama.cpp computes with.
	_ "github.com/ollama/ollama/llama"
)

// GGML tensor types the loader dequantizes (values are ggml_type).
const (
	TypeF32  = 0
	TypeF16  = 1
	TypeQ4_0 = 2
	TypeQ4_1 = 3
	TypeQ5_0 = 6
	TypeQ5_1 = 7
	TypeQ8_0 = 8
	TypeQ2_K = 10
	TypeQ3_K = 11
	TypeQ4_K = 12
	TypeQ5_K = 13
	TypeQ6_K = 14
	TypeBF16 = 30
)

// supportedTypes are the tensor types ggml's to_float handles that we accept in a base model.
var supportedTypes = map[uint32]bool{
	TypeF32: true, TypeF16: true, TypeBF16: true, TypeQ4_0: true, TypeQ4_1: true, TypeQ5_0: true,
	TypeQ5_1: true, TypeQ8_0: true, TypeQ2_K: true, TypeQ3_K: true, TypeQ4_K: true, TypeQ5_K: true,
	TypeQ6_K: true,
}

// typeName returns ggml's name for a tensor type ("q4_K"), or a number for unknown ones.
func typeName(t uint32) string {
	if t >= C.GGML_TYPE_COUNT {
		return fmt.Sprintf("type(%d)", t)
	}
	return C.GoString(C.ggml_type_name(C.enum_ggml_type(t)))
}

// rowBytes is the byte size of n elements of type t (ggml_row_size); n must be a multiple of the block size.
func rowBytes(t uint32, n int) int {
	return int(C.ggml_row_size(C.enum_ggml_type(t), C.int64_t(n)))
}

// blockSize is the number of elements per quantization block of type t.
func blockSize(t uint32) int { return int(C.ggml_blck_size(C.enum_ggml_type(t))) }

// dequantize converts len(dst) elements of type t from src with ggml's to_float.
func dequantize(t uint32, src []byte, dst []float32) error {
	if !supportedTypes[t] {
		return fmt.Errorf("unsupported tensor type %s", typeName(t))
	}
	n := len(dst)
	if n == 0 {
		return nil
	}
	if n%blockSize(t) != 0 {
		return fmt.Errorf("%d elements is not a multiple of the %s block size %d", n, typeName(t), blockSize(t))
	}
	if need := rowBytes(t, n); len(src) < need {
		return fmt.Errorf("%s data: %d bytes, need %d", typeName(t), len(src), need)
	}
	if t == TypeF32 { // ggml has no to_float for F32: it is a plain little-endian copy
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		return nil
	}
	if C.vz_to_float(C.int(t), unsafe.Pointer(&src[0]), (*C.float)(unsafe.Pointer(&dst[0])), C.int64_t(n)) != 0 {
		return fmt.Errorf("ggml has no to_float for %s", typeName(t))
	}
	return nil
}

// quantize converts rows x perRow floats to type t with ggml_quantize_chunk (no importance matrix).
// Used to build quantized test models and by tests of the loader.
func quantize(t uint32, src []float32, rows, perRow int) ([]byte, error) {
	if rows*perRow != len(src) || rows <= 0 {
		return nil, fmt.Errorf("quantize: %d floats is not %d rows of %d", len(src), rows, perRow)
	}
	if perRow%blockSize(t) != 0 {
		return nil, fmt.Errorf("quantize: row length %d is not a multiple of the %s block size %d", perRow, typeName(t), blockSize(t))
	}
	dst := make([]byte, rows*rowBytes(t, perRow))
	C.ggml_quantize_chunk(C.enum_ggml_type(t), (*C.float)(unsafe.Pointer(&src[0])), unsafe.Pointer(&dst[0]),
		0, C.int64_t(rows), C.int64_t(perRow), nil)
	return dst, nil
}
