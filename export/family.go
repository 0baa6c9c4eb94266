package export

import (
	"errors"
	"fmt"
	"slices"

	"github.com/ollama/ollama/fs/ggml"
)

// ErrOllamaFamily is returned (wrapped) when Ollama 0.17.4 cannot run a model family's images
// with an adapter; the message says why and what to use instead.
var ErrOllamaFamily = errors.New("Ollama cannot serve this model with an adapter")

// mropeArchs and mropeProjectors use M-RoPE (4-D positions for image tokens). Ollama's llama.cpp
// runner passes one position per token, so their images come out wrong (llama-cpp-notes §3.3).
var (
	mropeArchs      = []string{"qwen2vl", "qwen3vl", "qwen3vlmoe", "glm4v", "glm4v_moe"}
	mropeProjectors = []string{"qwen2vl_merger", "qwen2.5vl_merger", "qwen3vl_merger", "glm4v"}
)

// FamilyCheck is the verdict on serving a base + adapter in Ollama.
type FamilyCheck struct {
	Arch      string   // text model architecture
	Projector string   // clip.projector_type of the mmproj, "" without one
	Warnings  []string // it works, but with a caveat the user should know
}

// CheckOllamaFamily decides whether Ollama 0.17.4 can serve text model + mmproj + adapter
// (llama-cpp-notes §3.2-3.3). An adapter works exactly when the model runs on Ollama's llama.cpp
// runner: a split model (text GGUF + projector GGUF) or a text-only architecture that does not
// require Ollama's own engine. mmprojPath may be empty.
func CheckOllamaFamily(textPath, mmprojPath string) (FamilyCheck, error) {
	text, err := readGGUF(textPath)
	if err != nil {
		return FamilyCheck{}, fmt.Errorf("base model: %w", err)
	}
	fc := FamilyCheck{Arch: text.Arch()}
	if mmprojPath != "" {
		if fc.Projector, err = projectorType(mmprojPath); err != nil {
			return fc, err
		}
	}
	return fc, fc.verdict()
}

// projectorType is clip.projector_type of a vision projector GGUF; an error when the file is not
// one (a text model or an adapter passed as --mmproj, an empty or truncated file).
func projectorType(mmprojPath string) (string, error) {
	proj, err := readGGUF(mmprojPath)
	if err != nil {
		return "", fmt.Errorf("mmproj: %w", err)
	}
	pt := proj.String("clip.projector_type")
	if pt == "" {
		return "", fmt.Errorf("mmproj %s has no clip.projector_type: not a llama.cpp vision projector", mmprojPath)
	}
	return pt, nil
}

func (fc *FamilyCheck) verdict() error {
	merged := "use --format merged and run the merged GGUF with llama.cpp (llama-mtmd-cli or llama-server --mmproj), which handles this family"
	switch {
	case fc.Arch == "mllama":
		return fmt.Errorf("%w: architecture mllama (Llama 3.2 Vision) runs only on Ollama's own engine, which rejects adapters (\"loras are not yet implemented\"), and llama.cpp has no mllama", ErrOllamaFamily)
	case fc.Projector != "" && (slices.Contains(mropeArchs, fc.Arch) || slices.Contains(mropeProjectors, fc.Projector)):
		return fmt.Errorf("%w: %s with a %s projector uses M-RoPE; Ollama 0.17.4 serves a split model on its llama.cpp runner, which gives image tokens 1-D positions, so images come out wrong (with or without the adapter); %s",
			ErrOllamaFamily, fc.Arch, fc.Projector, merged)
	case fc.Projector == "" && (ggml.KV{"general.architecture": fc.Arch}).OllamaEngineRequired():
		return fmt.Errorf("%w: architecture %s without a separate projector runs on Ollama's own engine, which rejects adapters (\"loras are not yet implemented\"); export the text model with a separate mmproj, or %s",
			ErrOllamaFamily, fc.Arch, merged)
	}
	if fc.Arch == "gemma3" && fc.Projector != "" {
		fc.Warnings = append(fc.Warnings, "gemma3 split model: Ollama's llama.cpp runner decodes image tokens with causal attention (llama.cpp uses non-causal), so image answers differ somewhat from llama.cpp's")
	}
	return nil
}
