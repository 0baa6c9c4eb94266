package cuda

import (
	"fmt"

	"github.com/rs/zerolog/log"

	"github.com/vzlocal/vzlocal/lora"
)

// uploadRaw sends the layer matrices of the GGUF at path as their ggml blocks (Q8_0, Q4_K, Q6_K,
// F16, BF16, F32): they stay quantized on the GPU and each layer is dequantized into a scratch
// just before it runs (Options.GGUF). Matrices of other types are sent from the host model,
// converted to the engine's precision. done[il*7+t] reports which were sent raw.
func (e *Engine) uploadRaw(path string) (done []bool, err error) {
	f, err := openGGUF(path)
	if err != nil {
		return nil, err
	}
	defer f.close()
	c := e.m.Cfg
	done = make([]bool, c.NLayer*nTarget)
	var raw, bytes int64
	for il := 0; il < c.NLayer; il++ {
		for k, tg := range lora.Targets {
			in, out, _ := c.LinearShape(tg)
			t := f.byName[fmt.Sprintf("blk.%d.%s.weight", il, tg)]
			if t == nil || !rawTypes[t.Kind] || len(t.Shape) != 2 || int(t.Shape[0]) != in || int(t.Shape[1]) != out {
				continue // the host model's copy is sent instead
			}
			_, b, err := f.tensor(t.Name, in*out)
			if err != nil {
				return nil, err
			}
			if err := cSetWeightRaw(e.h, il, k, t.Kind, b); err != nil {
				return nil, err
			}
			done[il*nTarget+k] = true
			raw++
			bytes += int64(len(b))
		}
	}
	log.Debug().Str("path", path).Int64("matrices", raw).Float64("GiB", float64(bytes)/(1<<30)).
		Msg("lora: CUDA engine keeps layer matrices quantized")
	return done, nil
}
