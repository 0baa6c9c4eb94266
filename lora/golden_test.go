package lora

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenAdapter is a small deterministic adapter: 1 layer, attn_q and ffn_down, rank 2.
func goldenAdapter(t *testing.T, arch string) (*Adapter, Config) {
	c := Config{Arch: arch, NLayer: 1, NEmbd: 8, NHead: 2, NHeadKV: 1, HeadDim: 4, NFF: 16, NVocab: 300}
	a, err := NewAdapter(c, AdapterOptions{Rank: 2, Alpha: 4, Targets: []string{"ffn_down", "attn_q"}, Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range a.Pairs {
		for i := range p.B {
			p.B[i] = float32(i+1) / 16
		}
	}
	return a, c
}

func compareGolden(t *testing.T, got []byte, name string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: output differs from the golden file (%d vs %d bytes); if the format change is intended, rerun with -update", name, len(got), len(want))
	}
}

// TestGoldenFiles pins the exact bytes of the GGUF adapter (F32 and F16) and of the PEFT files, so a
// format change is always deliberate.
func TestGoldenFiles(t *testing.T) {
	a, c := goldenAdapter(t, "llama")
	dir := t.TempDir()
	for _, k := range []struct {
		kind uint32
		name string
	}{{TypeF32, "adapter_f32.gguf"}, {TypeF16, "adapter_f16.gguf"}} {
		p := filepath.Join(dir, k.name)
		if err := a.WriteGGUF(p, k.kind); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(p)
		compareGolden(t, got, k.name)
	}
	if err := a.WritePEFT(filepath.Join(dir, "peft"), c, "golden/base", ""); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"adapter_model.safetensors", "adapter_config.json"} {
		got, _ := os.ReadFile(filepath.Join(dir, "peft", f))
		compareGolden(t, got, "peft_"+f)
	}
}
