package export

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/vzlocal/vzlocal/llm/testmodel"
	"github.com/vzlocal/vzlocal/lora"
)

// BenchmarkMerge folds a rank-16 adapter on every linear layer into a ~200M-parameter Q8_0 model
// (the cgo-notes "bench-q8" shape) and reports MB/s of output for each --quant.
// Run: ./scripts/go test ./export/ -run '^$' -bench Merge -benchtime 1x
func BenchmarkMerge(b *testing.B) {
	dir := b.TempDir()
	files, err := testmodel.Write(dir, testmodel.Config{Family: "llava", Seed: 1, Embd: 1024, Heads: 16, KVHeads: 4,
		FFN: 2816, Layers: 12, Vocab: 32000, WeightType: "q8_0", NoMMProj: true})
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := lora.ReadConfig(files.Text)
	if err != nil {
		b.Fatal(err)
	}
	a, err := lora.NewAdapter(cfg, lora.AdapterOptions{Rank: 16, Alpha: 32, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range a.Pairs { // a trained adapter: B is not zero (the fold skips zero rows)
		for i := range p.B {
			p.B[i] = 1e-3 * float32(i%7-3)
		}
	}
	ad := FromLoRA(a)
	for _, quant := range []string{QuantKeep, "f16", "q4_K"} {
		b.Run(quant, func(b *testing.B) {
			out := filepath.Join(dir, "merged-"+quant+".gguf")
			for range b.N {
				if _, err := WriteMerged(context.Background(), files.Text, out, ad, quant); err != nil {
					b.Fatal(err)
				}
			}
			st, err := os.Stat(out)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(st.Size())
		})
	}
}
