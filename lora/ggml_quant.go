package lora

import "github.com/vzlocal/vzlocal/internal/ggmlquant"

// GGML tensor types the loader dequantizes and the adapter writers use (values are ggml_type).
const (
	TypeF32  = ggmlquant.TypeF32
	TypeF16  = ggmlquant.TypeF16
	TypeQ4_0 = ggmlquant.TypeQ4_0
	TypeQ4_1 = ggmlquant.TypeQ4_1
	TypeQ5_0 = ggmlquant.TypeQ5_0
	TypeQ5_1 = ggmlquant.TypeQ5_1
	TypeQ8_0 = ggmlquant.TypeQ8_0
	TypeQ2_K = ggmlquant.TypeQ2_K
	TypeQ3_K = ggmlquant.TypeQ3_K
	TypeQ4_K = ggmlquant.TypeQ4_K
	TypeQ5_K = ggmlquant.TypeQ5_K
	TypeQ6_K = ggmlquant.TypeQ6_K
	TypeBF16 = ggmlquant.TypeBF16
)

// The loader's names for ggmlquant's functions, in the int sizes the engine uses.
func typeName(t uint32) string                             { return ggmlquant.TypeName(t) }
func blockSize(t uint32) int                               { return int(ggmlquant.BlockSize(t)) }
func dequantize(t uint32, src []byte, dst []float32) error { return ggmlquant.Dequantize(t, src, dst) }
