package export

/*
#include <stdint.h>
#include "ggml.h"

// vz_export_to_float dequantizes n values of type t with ggml's reference to_float.
static int vz_export_to_float(int t, const void *src, float *dst, int64_t n) {
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
	"strings"
	"sync"
	"unsafe"

	// Links ggml: the quantizers below are ggml's own, so a merged file holds exactly the bytes
	// llama.cpp's quantize tool would write for the same numbers.
	_ "github.com/ollama/ollama/llama"
	// Lets binaries with this package link with -march=native on AMX CPUs (see that package).
	_ "github.com/vzlocal/vzlocal/llm/testmodel/amxlink"
)

// GGML tensor types (ggml_type values) that the merged writer reads and writes.
const (
	typeF32  uint32 = 0
	typeF16  uint32 = 1
	typeQ4_0 uint32 = 2
	typeQ4_1 uint32 = 3
	typeQ5_0 uint32 = 6
	typeQ5_1 uint32 = 7
	typeQ8_0 uint32 = 8
	typeQ2_K uint32 = 10
	typeQ3_K uint32 = 11
	typeQ4_K uint32 = 12
	typeQ5_K uint32 = 13
	typeQ6_K uint32 = 14
	typeBF16 uint32 = 30
)

// quantTypes are the types a folded weight can be written in: those llama.cpp's quantize tool
// produces without an importance matrix.
var quantTypes = map[uint32]bool{
	typeF32: true, typeF16: true, typeBF16: true, typeQ4_0: true, typeQ4_1: true, typeQ5_0: true,
	typeQ5_1: true, typeQ8_0: true, typeQ2_K: true, typeQ3_K: true, typeQ4_K: true, typeQ5_K: true,
	typeQ6_K: true,
}

// typeName is ggml's name of a tensor type ("q4_K").
func typeName(t uint32) string {
	if t >= C.GGML_TYPE_COUNT {
		return fmt.Sprintf("type(%d)", t)
	}
	if name := C.ggml_type_name(C.enum_ggml_type(t)); name != nil {
		return C.GoString(name)
	}
	return fmt.Sprintf("type(%d)", t)
}

// typeByName maps a --quant value ("q4_k", "Q8_0", "f16") to a ggml type.
func typeByName(name string) (uint32, bool) {
	for t := range quantTypes {
		if strings.EqualFold(typeName(t), name) {
			return t, true
		}
	}
	return 0, false
}

// knownType reports whether t is a ggml type this build knows (so its sizes can be computed).
func knownType(t uint32) bool {
	return t < C.GGML_TYPE_COUNT && C.ggml_blck_size(C.enum_ggml_type(t)) > 0 && C.ggml_type_size(C.enum_ggml_type(t)) > 0
}

// blockSize is the number of values per block of type t.
func blockSize(t uint32) int64 { return int64(C.ggml_blck_size(C.enum_ggml_type(t))) }

// rowBytes is the size in bytes of n values of type t (ggml_row_size); n must be a whole number
// of blocks.
func rowBytes(t uint32, n int64) int64 {
	return int64(C.ggml_row_size(C.enum_ggml_type(t), C.int64_t(n)))
}

// dequantize converts the values in src (type t) to float32, len(dst) of them.
func dequantize(t uint32, src []byte, dst []float32) error {
	n := int64(len(dst))
	if n == 0 {
		return nil
	}
	if !quantTypes[t] {
		return fmt.Errorf("cannot dequantize tensor type %s", typeName(t))
	}
	if n%blockSize(t) != 0 {
		return fmt.Errorf("%d values is not a whole number of %s blocks of %d", n, typeName(t), blockSize(t))
	}
	if need := rowBytes(t, n); int64(len(src)) != need {
		return fmt.Errorf("%s data has %d bytes, want %d", typeName(t), len(src), need)
	}
	if t == typeF32 { // ggml has no to_float for its own float type
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		return nil
	}
	if C.vz_export_to_float(C.int(t), unsafe.Pointer(&src[0]), (*C.float)(unsafe.Pointer(&dst[0])), C.int64_t(n)) != 0 {
		return fmt.Errorf("ggml has no dequantizer for %s", typeName(t))
	}
	return nil
}

// quantize converts a rows×perRow matrix to type t with ggml_quantize_chunk (no importance
// matrix, as llama.cpp's quantize tool without --imatrix). K-quants are slow (tens of MB/s), so
// row ranges are quantized in parallel; the bytes do not depend on the split.
func quantize(t uint32, src []float32, rows, perRow int64) ([]byte, error) {
	if !quantTypes[t] {
		return nil, fmt.Errorf("cannot quantize to %s", typeName(t))
	}
	if rows*perRow != int64(len(src)) {
		return nil, fmt.Errorf("quantize: %d values for %d×%d", len(src), rows, perRow)
	}
	if perRow%blockSize(t) != 0 {
		return nil, fmt.Errorf("rows of %d values cannot be stored as %s (blocks of %d)", perRow, typeName(t), blockSize(t))
	}
	if C.ggml_quantize_requires_imatrix(C.enum_ggml_type(t)) {
		return nil, fmt.Errorf("%s needs an importance matrix", typeName(t))
	}
	rowSize := rowBytes(t, perRow)
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
