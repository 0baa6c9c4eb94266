package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// AdapterFile is the newest adapter inside a training run folder.
const AdapterFile = "adapter.gguf"

// runConfig is the part of RUNDIR/config.json export needs (train.Config marshals its fields as
// "Model"/"MMProj"; encoding/json matches keys case-insensitively, so "model"/"mmproj" work too).
type runConfig struct {
	Model  string `json:"model"`
	MMProj string `json:"mmproj"`
}

// Source is what an export starts from: an adapter and the base model files it belongs to.
type Source struct {
	Adapter string // llama.cpp LoRA GGUF
	Model   string // base text GGUF
	MMProj  string // base vision projector GGUF ("" for a text-only base)
	RunDir  string // the run folder, when the input was one
}

// ResolveSource turns the command's input (a run folder or an adapter file) and the optional
// --base/--mmproj flags into file paths, and checks that the files exist. Flags win over the run's
// config.json.
func ResolveSource(input, base, mmproj string) (Source, error) {
	st, err := os.Stat(input)
	if err != nil {
		return Source{}, fmt.Errorf("export: %w", err)
	}
	src := Source{Model: base, MMProj: mmproj}
	if st.IsDir() {
		src.RunDir = input
		src.Adapter = filepath.Join(input, AdapterFile)
		if _, err := os.Stat(src.Adapter); errors.Is(err, os.ErrNotExist) {
			return src, fmt.Errorf("run folder %s has no %s (has the run finished an optimizer step?)", input, AdapterFile)
		}
		if base == "" || mmproj == "" {
			cfg, err := readRunConfig(input)
			if err != nil {
				return src, err
			}
			if src.Model == "" {
				src.Model = runPath(input, cfg.Model)
			}
			if src.MMProj == "" {
				src.MMProj = runPath(input, cfg.MMProj)
			}
		}
	} else {
		src.Adapter = input
	}
	if src.Model == "" {
		return src, fmt.Errorf("export %s: which base model? pass --base model.gguf (and --mmproj for a vision model)", input)
	}
	for _, p := range []struct{ what, path string }{{"adapter", src.Adapter}, {"base model", src.Model}, {"mmproj", src.MMProj}} {
		if p.path == "" {
			continue
		}
		if _, err := os.Stat(p.path); err != nil {
			return src, fmt.Errorf("export: %s: %w", p.what, err)
		}
	}
	return src, nil
}

func readRunConfig(dir string) (runConfig, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return runConfig{}, fmt.Errorf("run folder %s has no config.json; pass --base (and --mmproj)", dir)
	}
	if err != nil {
		return runConfig{}, err
	}
	var cfg runConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("%s: not a JSON object: %w", path, err)
	}
	if cfg.Model == "" {
		return cfg, fmt.Errorf("%s has no \"model\"; pass --base", path)
	}
	return cfg, nil
}

// runPath resolves a path from config.json: as written when it exists (absolute, or relative to
// where training was started), otherwise relative to the run folder.
func runPath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return filepath.Join(dir, p)
}
