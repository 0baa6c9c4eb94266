package testmodel

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vzlocal/vzlocal/internal/atomicfile"

	"github.com/ollama/ollama/fs/ggml"
)

// File names Write uses inside dir.
const (
	TextFile   = "text.gguf"
	MMProjFile = "mmproj.gguf"
)

// Write writes the text model (and, unless cfg.NoMMProj, its mmproj) into dir, creating dir if
// needed. The same cfg always gives byte-identical files; each file is written to a temporary file
// and renamed, so a reader never sees half a model.
func Write(dir string, cfg Config) (Files, error) {
	r, err := resolve(cfg)
	if err != nil {
		return Files{}, err
	}
	v, err := buildVocab(r.Vocab)
	if err != nil {
		return Files{}, err
	}
	kv, err := textKV(r, v)
	if err != nil {
		return Files{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("testmodel: %w", err)
	}
	files := Files{Text: filepath.Join(dir, TextFile)}
	if err := writeGGUF(files.Text, kv, ggmlTensors(textTensors(r), r.Seed, r.kind, r.WeightStd)); err != nil {
		return Files{}, err
	}
	if r.NoMMProj {
		return files, nil
	}
	p, ok := projectors[r.fam.name]
	if !ok {
		return Files{}, fmt.Errorf("testmodel: family %s has no projector", r.fam.name)
	}
	files.MMProj = filepath.Join(dir, MMProjFile)
	// The vision weights get their own seed stream so that they do not repeat text weights of the
	// same name pattern.
	if err := writeGGUF(files.MMProj, mmprojKV(r, p), ggmlTensors(p.tensors(r.Embd), r.Seed^0x5eed_1a6e, r.kind, r.WeightStd)); err != nil {
		return Files{}, err
	}
	return files, nil
}

// writeGGUF writes a GGUF atomically: a temporary file in the same directory, synced, then renamed.
func writeGGUF(path string, kv map[string]any, ts []*ggml.Tensor) error {
	if err := atomicfile.Create(path, func(f *os.File) error { return ggml.WriteGGUF(f, ggml.KV(kv), ts) }); err != nil {
		return fmt.Errorf("testmodel: %w", err)
	}
	return nil
}
