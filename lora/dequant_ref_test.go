package lora

import (
	"encoding/binary"
	"fmt"

	"github.com/x448/float16"
)

// dequantizeRef is a pure-Go reference of ggml's dequantize_row_* for Q4_0, Q8_0, Q4_K and Q6_K,
// written from ggml-quants.c. Tests require it to agree with ggml's to_float bit for bit, which pins
// down the block layouts the loader relies on.
func dequantizeRef(t uint32, src []byte, dst []float32) error {
	f16 := func(b []byte) float32 { return float16.Frombits(binary.LittleEndian.Uint16(b)).Float32() }
	switch t {
	case TypeQ4_0: // f16 d, u8 qs[16]: low nibbles are elements 0..15, high nibbles 16..31
		for b := 0; b < len(dst)/32; b++ {
			blk, y := src[b*18:], dst[b*32:]
			d := f16(blk)
			for j := 0; j < 16; j++ {
				y[j] = float32(int(blk[2+j]&0xF)-8) * d
				y[j+16] = float32(int(blk[2+j]>>4)-8) * d
			}
		}
	case TypeQ8_0: // f16 d, i8 qs[32]
		for b := 0; b < len(dst)/32; b++ {
			blk, y := src[b*34:], dst[b*32:]
			d := f16(blk)
			for j := 0; j < 32; j++ {
				y[j] = float32(int8(blk[2+j])) * d
			}
		}
	case TypeQ4_K: // f16 d, f16 dmin, u8 scales[12] (6-bit scale/min pairs), u8 qs[128]
		for b := 0; b < len(dst)/256; b++ {
			blk, y := src[b*144:], dst[b*256:]
			d, dmin := f16(blk), f16(blk[2:])
			sc, q := blk[4:16], blk[16:144]
			is := 0
			for j := 0; j < 256; j += 64 {
				s1, m1 := scaleMinK4(is, sc)
				s2, m2 := scaleMinK4(is+1, sc)
				d1, mm1 := d*float32(s1), dmin*float32(m1)
				d2, mm2 := d*float32(s2), dmin*float32(m2)
				for l := 0; l < 32; l++ {
					y[j+l] = float32(d1*float32(q[l]&0xF)) - mm1
				}
				for l := 0; l < 32; l++ {
					y[j+32+l] = float32(d2*float32(q[l]>>4)) - mm2
				}
				q = q[32:]
				is += 2
			}
		}
	case TypeQ6_K: // u8 ql[128], u8 qh[64], i8 scales[16], f16 d
		for b := 0; b < len(dst)/256; b++ {
			blk, y := src[b*210:], dst[b*256:]
			ql, qh, sc := blk[0:128], blk[128:192], blk[192:208]
			d := f16(blk[208:])
			for n := 0; n < 256; n += 128 {
				for l := 0; l < 32; l++ {
					is := l / 16
					q1 := int(ql[l]&0xF|((qh[l]>>0)&3)<<4) - 32
					q2 := int(ql[l+32]&0xF|((qh[l]>>2)&3)<<4) - 32
					q3 := int(ql[l]>>4|((qh[l]>>4)&3)<<4) - 32
					q4 := int(ql[l+32]>>4|((qh[l]>>6)&3)<<4) - 32
					y[n+l] = d * float32(int8(sc[is+0])) * float32(q1)
					y[n+l+32] = d * float32(int8(sc[is+2])) * float32(q2)
					y[n+l+64] = d * float32(int8(sc[is+4])) * float32(q3)
					y[n+l+96] = d * float32(int8(sc[is+6])) * float32(q4)
				}
				ql, qh, sc = ql[64:], qh[32:], sc[8:]
			}
		}
	default:
		return fmt.Errorf("no Go reference dequantizer for %s", typeName(t))
	}
	return nil
}

// scaleMinK4 unpacks the j-th 6-bit (scale, min) pair of a K-quant block (ggml's get_scale_min_k4).
func scaleMinK4(j int, q []byte) (d, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return (q[j+4] & 0xF) | ((q[j-4] >> 6) << 4), (q[j+4] >> 4) | ((q[j] >> 6) << 4)
}
