package llm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ollama/ollama/fs/ggml"
)

// llama.cpp aborts the whole process (GGML_ASSERT, segfault) on several kinds of bad input
// instead of returning an error, and says little when it does return one. Every file is therefore
// read here first, in pure Go (fs/ggml.Decode reads only the header), and rejected with an error
// that names the file and the problem.

// FileError reports a model, projector or adapter file that cannot be used.
type FileError struct {
	Kind    string // "model", "mmproj" or "adapter"
	Path    string
	Problem string
}

func (e *FileError) Error() string { return e.Kind + " " + e.Path + ": " + e.Problem }

func fileErr(kind, path, format string, args ...any) error {
	return &FileError{Kind: kind, Path: path, Problem: fmt.Sprintf(format, args...)}
}

// maxHeaderArray keeps small arrays (image_mean, rope sections) and skips vocabularies.
const maxHeaderArray = 64

// readHeader checks that path is a readable GGUF file and decodes its header, keeping arrays of
// up to maxArray values (all when negative).
func readHeader(kind, path string, maxArray int) (*ggml.GGML, error) {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fileErr(kind, path, "file does not exist")
	}
	if err != nil {
		return nil, fileErr(kind, path, "%v", err)
	}
	if st.IsDir() {
		return nil, fileErr(kind, path, "is a directory, not a GGUF file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fileErr(kind, path, "%v", err)
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil {
		return nil, fileErr(kind, path, "not a GGUF file (%d bytes long)", st.Size())
	}
	if !bytes.Equal(magic, []byte("GGUF")) {
		return nil, fileErr(kind, path, "not a GGUF file (magic %q, want \"GGUF\")", magic)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fileErr(kind, path, "%v", err)
	}
	g, err := ggml.Decode(f, maxArray)
	if err != nil {
		return nil, fileErr(kind, path, "corrupt GGUF header: %v", err)
	}
	return g, nil
}

// textInfo is what the projector and adapter checks need to know about the text model.
type textInfo struct {
	arch     string
	nEmbd    int // embedding_length
	nEmbdInp int // width of input embedding rows (n_embd, times 1+deepstack layers for qwen3vl)
}

// checkModel validates a text model file.
func checkModel(path string) (textInfo, error) {
	const kind = "model"
	g, err := readHeader(kind, path, -1) // the vocabulary too: see below
	if err != nil {
		return textInfo{}, err
	}
	kv := g.KV()
	arch, ok := kv["general.architecture"].(string)
	switch {
	case !ok || arch == "":
		return textInfo{}, fileErr(kind, path, "not a model: no general.architecture")
	case kv["general.type"] == "adapter":
		return textInfo{}, fileErr(kind, path, "is a LoRA adapter (general.type \"adapter\"), not a model")
	case arch == "clip":
		return textInfo{}, fileErr(kind, path, "is a vision projector (general.architecture \"clip\"), not a text model")
	}
	n, ok := kv[arch+".embedding_length"].(uint32)
	if !ok || n == 0 {
		return textInfo{}, fileErr(kind, path, "no %s.embedding_length (uint32)", arch)
	}
	info := textInfo{arch: arch, nEmbd: int(n), nEmbdInp: int(n)}
	if d, ok := kv[arch+".n_deepstack_layers"].(uint32); ok {
		info.nEmbdInp = int(n) * (1 + int(d))
	}
	if arch == "qwen2vl" {
		if problem := checkQwen2VL(kv, g.Tensors()); problem != "" {
			return textInfo{}, fileErr(kind, path, "%s", problem)
		}
	}
	if arch == "gemma3" {
		// Every 6th layer is global when a window is set: with fewer layers the global KV cache
		// is empty and the first llama_decode aborts (tiny-models.md §3.4).
		w, _ := kv["gemma3.attention.sliding_window"].(uint32)
		if n, _ := kv["gemma3.block_count"].(uint32); w > 0 && n < 6 {
			return textInfo{}, fileErr(kind, path, "gemma3 with a sliding window needs at least 6 layers (every 6th is global), it has %d", n)
		}
	}
	// llama.cpp asserts that token texts are unique (GGML_ASSERT in llama-vocab.cpp).
	seen := map[string]int{}
	for i, tok := range kv.Strings("tokenizer.ggml.tokens") {
		if j, dup := seen[tok]; dup {
			return textInfo{}, fileErr(kind, path, "tokens %d and %d of tokenizer.ggml.tokens are both %q (token texts must be unique)", j, i, tok)
		}
		seen[tok] = i
	}
	if len(g.Tensors().Items()) == 0 {
		return textInfo{}, fileErr(kind, path, "not a model: no tensors")
	}
	return info, nil
}

// checkQwen2VL catches what llama.cpp's qwen2vl loader accepts but its graph cannot run: missing
// q/k/v biases (marked optional, added unconditionally: a segfault at context creation) and M-RoPE
// sections wider than the rotary dimensions (GGML_ASSERT(sect_dims <= ne0) at the first decode).
func checkQwen2VL(kv ggml.KV, ts ggml.Tensors) string {
	names := map[string]bool{}
	for _, t := range ts.Items() {
		names[t.Name] = true
	}
	blocks, _ := kv["qwen2vl.block_count"].(uint32)
	for i := range int(blocks) {
		for _, n := range []string{"attn_q", "attn_k", "attn_v"} {
			if name := fmt.Sprintf("blk.%d.%s.bias", i, n); !names[name] {
				return fmt.Sprintf("missing tensor %s (the qwen2vl graph needs the q/k/v biases)", name)
			}
		}
	}
	sections, ok := int32Values(kv["qwen2vl.rope.dimension_sections"])
	embd, _ := kv["qwen2vl.embedding_length"].(uint32)
	heads, _ := kv["qwen2vl.attention.head_count"].(uint32)
	if !ok || heads == 0 {
		return "" // llama.cpp reports these itself
	}
	dims := int64(embd / heads)
	if d, ok := kv["qwen2vl.rope.dimension_count"].(uint32); ok {
		dims = int64(d)
	}
	sum := int64(0)
	for _, x := range sections {
		sum += x
	}
	if sum > dims {
		return fmt.Sprintf("qwen2vl.rope.dimension_sections %v sum to %d, more than the %d rotary dimensions", sections, sum, dims)
	}
	return ""
}
