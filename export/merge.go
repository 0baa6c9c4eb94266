package export

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/vzlocal/vzlocal/internal/ggmlquant"
	"github.com/vzlocal/vzlocal/internal/parallel"

	"github.com/rs/zerolog/log"
)

// QuantKeep writes every folded weight in the type the base stored it in.
const QuantKeep = "keep"

// MergeStats summarises a merged export.
type MergeStats struct {
	Folded, Copied int            // tensors changed by the adapter / copied byte for byte
	Types          map[string]int // output type name -> number of folded tensors
	Elapsed        time.Duration
}

// WriteMerged writes outPath: the base GGUF with W + (alpha/r)·B·A folded into every adapted
// weight, each folded weight stored as quant ("keep" = the base's own type of that tensor, or a
// ggml type name such as "f16", "q8_0", "q4_K"). Every other tensor and every key-value pair is
// copied unchanged. The adapter is checked against the base first; the file appears only when
// complete.
func WriteMerged(ctx context.Context, basePath, outPath string, ad *Adapter, quant string) (MergeStats, error) {
	start := time.Now()
	stats := MergeStats{Types: map[string]int{}}
	base, err := readGGUF(basePath)
	if err != nil {
		return stats, fmt.Errorf("base model: %w", err)
	}
	if err := ad.checkBase(base); err != nil {
		return stats, err
	}
	pairs := map[string]Pair{}
	for _, p := range ad.Pairs {
		pairs[p.Base] = p
	}

	// Decide every output type first, so that an impossible request fails before writing.
	out := make([]tensorInfo, len(base.Tensors))
	copy(out, base.Tensors)
	var forced uint32
	if quant != QuantKeep && quant != "" {
		t, ok := typeByName(quant)
		if !ok {
			return stats, fmt.Errorf("unknown --quant %q (want keep, f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_K, q3_K, q4_K, q5_K or q6_K)", quant)
		}
		forced = t
	}
	for i, t := range out {
		if _, ok := pairs[t.Name]; !ok {
			continue
		}
		if quant != QuantKeep && quant != "" {
			out[i].Type = forced
		}
		if !ggmlquant.Supported(t.Type) {
			return stats, fmt.Errorf("base weight %s is %s, which cannot be dequantized here; use --quant f16 or q8_0", t.Name, ggmlquant.TypeName(t.Type))
		}
		if !ggmlquant.Supported(out[i].Type) {
			return stats, fmt.Errorf("weight %s: cannot re-quantize to %s; use --quant f16, q8_0 or q4_K", t.Name, ggmlquant.TypeName(out[i].Type))
		}
		if int64(t.Shape[0])%ggmlquant.BlockSize(out[i].Type) != 0 {
			return stats, fmt.Errorf("weight %s has rows of %d values, not a multiple of the %s block size %d; use --quant f16",
				t.Name, t.Shape[0], ggmlquant.TypeName(out[i].Type), ggmlquant.BlockSize(out[i].Type))
		}
	}

	kvs := base.KVs
	if quant != QuantKeep && quant != "" {
		kvs = withFileType(kvs, out)
	}

	f, err := os.Open(basePath)
	if err != nil {
		return stats, fmt.Errorf("base model: %w", err)
	}
	defer f.Close()

	err = writeAtomic(outPath, func(w io.Writer) error {
		gw := &ggufWriter{w: w, alignment: int64(base.Alignment)}
		gw.header(kvs, out)
		if gw.err != nil {
			return gw.err
		}
		for i, t := range base.Tensors {
			if err := ctx.Err(); err != nil {
				return err
			}
			p, adapted := pairs[t.Name]
			if !adapted {
				src := io.NewSectionReader(f, base.DataOffset+int64(t.Offset), t.Bytes())
				n, err := io.Copy(w, src)
				gw.n += n
				if err != nil {
					return fmt.Errorf("copy tensor %s: %w", t.Name, err)
				}
				gw.pad()
				stats.Copied++
				continue
			}
			data, err := foldTensor(base, f, t, p, ad.Scale(p), out[i].Type)
			if err != nil {
				return err
			}
			gw.tensor(data)
			stats.Folded++
			stats.Types[ggmlquant.TypeName(out[i].Type)]++
			log.Debug().Str("tensor", t.Name).Str("from", ggmlquant.TypeName(t.Type)).Str("to", ggmlquant.TypeName(out[i].Type)).Msg("folded")
		}
		return gw.err
	})
	stats.Elapsed = time.Since(start)
	return stats, err
}

// foldTensor returns the bytes of W + s·B·A stored as type outType.
func foldTensor(base *ggufFile, f io.ReaderAt, t tensorInfo, p Pair, s float32, outType uint32) ([]byte, error) {
	raw, err := base.readTensor(f, t)
	if err != nil {
		return nil, err
	}
	in, rows := int64(t.Shape[0]), int64(t.Shape[1])
	w := make([]float32, in*rows)
	if err := ggmlquant.Dequantize(t.Type, raw, w); err != nil {
		return nil, fmt.Errorf("%s: tensor %s: %w", base.Path, t.Name, err)
	}
	parallel.For(int(rows), runtime.GOMAXPROCS(0), func(r0, r1 int) { p.addDelta(w, s, r0, r1) })
	q, err := ggmlquant.Quantize(outType, w, rows, in)
	if err != nil {
		return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
	}
	return q, nil
}

// fileTypes maps a tensor type to llama.cpp's general.file_type ("mostly T"; pure K-quants are
// the _S variants, which use T for every matrix).
var fileTypes = map[uint32]uint32{
	ggmlquant.TypeF32: 0, ggmlquant.TypeF16: 1, ggmlquant.TypeQ4_0: 2, ggmlquant.TypeQ4_1: 3, ggmlquant.TypeQ8_0: 7, ggmlquant.TypeQ5_0: 8, ggmlquant.TypeQ5_1: 9,
	ggmlquant.TypeQ2_K: 10, ggmlquant.TypeQ3_K: 11, ggmlquant.TypeQ4_K: 14, ggmlquant.TypeQ5_K: 16, ggmlquant.TypeQ6_K: 18, ggmlquant.TypeBF16: 32,
}

// withFileType returns kvs with general.file_type describing the output when every matrix of the
// decoder blocks has one type (Ollama shows it as the quantization level); otherwise kvs as is.
func withFileType(kvs []kvEntry, tensors []tensorInfo) []kvEntry {
	var t uint32
	n := 0
	for _, ti := range tensors {
		if len(ti.Shape) != 2 || !strings.HasPrefix(ti.Name, "blk.") {
			continue
		}
		if n > 0 && ti.Type != t {
			return kvs
		}
		t = ti.Type
		n++
	}
	ft, ok := fileTypes[t]
	if n == 0 || !ok {
		return kvs
	}
	out := make([]kvEntry, 0, len(kvs)+1)
	found := false
	for _, kv := range kvs {
		if kv.Key == "general.file_type" {
			kv = rawKV(kv.Key, ft)
			found = true
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, rawKV("general.file_type", ft))
	}
	return out
}
