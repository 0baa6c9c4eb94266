package testmodel

import (
	"encoding/binary"

	"github.com/x448/float16"
)

func decodeF16(b []byte) float32 {
	return float16.Frombits(binary.LittleEndian.Uint16(b)).Float32()
}
