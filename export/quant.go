package export

import (
	"strings"

	"github.com/vzlocal/vzlocal/internal/ggmlquant"
)

// quantTypes lists the types a folded weight can be written in (--quant), in ggml's order.
var quantTypes = []uint32{
	ggmlquant.TypeF32, ggmlquant.TypeF16, ggmlquant.TypeQ4_0, ggmlquant.TypeQ4_1, ggmlquant.TypeQ5_0,
	ggmlquant.TypeQ5_1, ggmlquant.TypeQ8_0, ggmlquant.TypeQ2_K, ggmlquant.TypeQ3_K, ggmlquant.TypeQ4_K,
	ggmlquant.TypeQ5_K, ggmlquant.TypeQ6_K, ggmlquant.TypeBF16,
}

// typeByName maps a --quant value ("q4_k", "Q8_0", "f16") to a ggml type.
func typeByName(name string) (uint32, bool) {
	for _, t := range quantTypes {
		if strings.EqualFold(ggmlquant.TypeName(t), name) {
			return t, true
		}
	}
	return 0, false
}
