// Package export turns a trained LoRA adapter into something people run: a llama.cpp adapter
// GGUF, an Ollama model (adapter + Modelfile, optionally created on a running server), a PEFT
// folder, or a merged GGUF with the adapter folded into the base weights. Every output file is
// written atomically, and a failed export removes the files it had already written, so the output
// folder never holds half an export. The Ollama facts it relies on are in
// shared/spec/llama-cpp-notes.md §2-3 and §5.
package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/ollama/ollama/types/model"
	"github.com/rs/zerolog/log"

	"github.com/vzlocal/vzlocal/internal/atomicfile"
	"github.com/vzlocal/vzlocal/lora"
)

// Formats are the export formats.
var Formats = []string{"ollama", "gguf", "peft", "merged"}

// Options says what to export and where.
type Options struct {
	Format string  // one of Formats
	Out    string  // output folder (created if missing)
	DType  string  // adapter tensor type for gguf/ollama: "f16" (default) or "f32"
	Quant  string  // merged: QuantKeep (default) or a ggml type name for the folded weights
	Scale  float32 // extra scale baked into alpha (the llama.cpp --lora-scaled value trained with); 0 means 1
	Create string  // ollama/merged: create this model on the Ollama server
	// PEFTLayers is the decoder layers' module path in the Hugging Face model the PEFT adapter is
	// for ("model.language_model.layers"); "" or "auto" picks it from the projector (peftLayers).
	PEFTLayers string
	Host       string // Ollama server; "" = OLLAMA_HOST or the default

	// Progress receives upload progress bars; nil shows none.
	Progress io.Writer
}

// Result lists what an export produced.
type Result struct {
	Files    []string // written files, in order
	Created  string   // Ollama model created, if any
	Warnings []string
	Merge    *MergeStats
}

// File names inside the output folder.
const (
	OutAdapter   = "adapter.gguf"
	OutModelfile = "Modelfile"
	OutModel     = "model.gguf"
	OutMMProj    = "mmproj.gguf"

	// PEFT's file names (written by package lora).
	OutPEFTWeights = "adapter_model.safetensors"
	OutPEFTConfig  = "adapter_config.json"
)

// writeAtomic is atomicfile.Write; tests replace it to simulate a full disk.
var writeAtomic = atomicfile.Write

// Export runs one export. All checks (options, adapter against base, Ollama family) run before
// the first file is written.
func Export(ctx context.Context, src Source, opt Options) (res Result, err error) {
	if err := opt.validate(); err != nil {
		return res, err
	}
	if opt.Format == "ollama" || (opt.Format == "merged" && opt.Create != "") {
		fc, err := CheckOllamaFamily(src.Model, src.MMProj)
		if err != nil && (opt.Format == "ollama" || !errors.Is(err, ErrOllamaFamily)) {
			return res, err
		}
		if err != nil { // merged: no adapter involved, but the family's images may still be off
			res.Warnings = append(res.Warnings, err.Error())
		}
		res.Warnings = append(res.Warnings, fc.Warnings...)
	}
	if opt.Format == "merged" && src.MMProj != "" {
		// the merged export copies the projector as is: it must be one
		if _, err := projectorType(src.MMProj); err != nil {
			return res, err
		}
	}
	la, ad, cfg, err := readAdapter(src.Adapter, src.Model)
	if err != nil {
		return res, err
	}
	scaled := bakeScale(la, opt.Scale)
	ad.Alpha = scaled.Alpha

	if opt.Create != "" { // fail on a bad name or a dead server before writing anything
		if err := checkOllama(ctx, opt); err != nil {
			return res, err
		}
	}
	tmpl, err := chatTemplate(src.Model)
	if err != nil {
		return res, err
	}
	if err := checkNoOverwrite(src, opt); err != nil {
		return res, err
	}

	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		return res, fmt.Errorf("export: %w", err)
	}
	// A failed export removes what it wrote, so the folder never holds half an export.
	defer func() {
		if err != nil {
			for _, f := range res.Files {
				os.Remove(f)
			}
			res.Files = nil
		}
	}()
	out := func(name string) string {
		p := filepath.Join(opt.Out, name)
		res.Files = append(res.Files, p)
		return p
	}

	switch opt.Format {
	case "gguf":
		err = scaled.WriteGGUF(out(OutAdapter), dtypeKind(opt.DType))
	case "peft":
		var projector string
		if src.MMProj != "" {
			if projector, err = projectorType(src.MMProj); err != nil {
				break
			}
		}
		out(OutPEFTWeights)
		out(OutPEFTConfig)
		err = scaled.WritePEFT(opt.Out, cfg, peftBaseName(src.Model), peftLayers(opt.PEFTLayers, projector))
	case "ollama":
		adapterPath := out(OutAdapter)
		if err = scaled.WriteGGUF(adapterPath, dtypeKind(opt.DType)); err != nil {
			break
		}
		m := OllamaModel{Name: opt.Create, Model: absPath(src.Model), MMProj: absPath(src.MMProj), Adapter: "./" + OutAdapter, Template: tmpl}
		if err = writeModelfile(out(OutModelfile), m); err != nil {
			break
		}
		if opt.Create != "" {
			m.Adapter = adapterPath
			err = create(ctx, opt, m)
		}
	case "merged":
		modelPath := out(OutModel)
		var st MergeStats
		st, err = WriteMerged(ctx, src.Model, modelPath, ad, opt.Quant)
		res.Merge = &st
		if err != nil {
			break
		}
		m := OllamaModel{Name: opt.Create, Model: "./" + OutModel, Template: tmpl}
		if src.MMProj != "" {
			if err = copyFile(src.MMProj, out(OutMMProj)); err != nil {
				break
			}
			m.MMProj = "./" + OutMMProj
		}
		if err = writeModelfile(out(OutModelfile), m); err != nil {
			break
		}
		if opt.Create != "" {
			m.Model = modelPath
			if m.MMProj != "" {
				m.MMProj = filepath.Join(opt.Out, OutMMProj)
			}
			err = create(ctx, opt, m)
		}
	}
	if err != nil {
		return res, err
	}
	res.Created = opt.Create
	for _, w := range res.Warnings {
		log.Warn().Msg(w)
	}
	return res, nil
}

// outputNames are the files each format writes into the output folder.
var outputNames = map[string][]string{
	"gguf":   {OutAdapter},
	"peft":   {OutPEFTWeights, OutPEFTConfig},
	"ollama": {OutAdapter, OutModelfile},
	"merged": {OutModel, OutMMProj, OutModelfile},
}

// checkNoOverwrite refuses an output folder where the export would replace one of its own inputs
// (--out RUNDIR with --format gguf would replace the trained adapter, and a failure would then
// delete it).
func checkNoOverwrite(src Source, opt Options) error {
	for _, name := range outputNames[opt.Format] {
		o := filepath.Join(opt.Out, name)
		oi, err := os.Stat(o)
		if err != nil {
			continue
		}
		for _, in := range []string{src.Adapter, src.Model, src.MMProj} {
			if in == "" {
				continue
			}
			if ii, err := os.Stat(in); err == nil && os.SameFile(oi, ii) {
				return fmt.Errorf("export: --out %s would overwrite the input %s; choose another folder", opt.Out, in)
			}
		}
	}
	return nil
}

func (opt *Options) validate() error {
	if !slices.Contains(Formats, opt.Format) {
		return fmt.Errorf("export: unknown --format %q (want ollama, gguf, peft or merged)", opt.Format)
	}
	if opt.Out == "" {
		return fmt.Errorf("export: --out is required")
	}
	if opt.DType == "" {
		opt.DType = "f16"
	}
	if opt.DType != "f16" && opt.DType != "f32" {
		return fmt.Errorf("export: --dtype %q: want f16 or f32", opt.DType)
	}
	if opt.Quant == "" {
		opt.Quant = QuantKeep
	}
	if _, ok := typeByName(opt.Quant); !ok && opt.Quant != QuantKeep {
		return fmt.Errorf("export: unknown --quant %q (want keep, f16, q8_0, q4_K, ...)", opt.Quant)
	}
	if opt.Scale < 0 {
		return fmt.Errorf("export: --scale %g must be positive", opt.Scale)
	}
	if opt.Create != "" && opt.Format != "ollama" && opt.Format != "merged" {
		return fmt.Errorf("export: --create works with --format ollama or merged")
	}
	return nil
}

// bakeScale returns the adapter with alpha chosen so that Ollama's fixed scale 1.0 applies the
// effect trained with llama.cpp scale s: llama.cpp uses s·alpha/rank, or s when alpha is 0.
func bakeScale(a *lora.Adapter, s float32) *lora.Adapter {
	if s == 0 {
		s = 1
	}
	c := *a
	if c.Alpha == 0 {
		c.Alpha = s * float32(c.Rank)
	} else {
		c.Alpha *= s
	}
	return &c
}

// peftLayers is the module path of the decoder layers for a PEFT export: the user's, or the
// one the Hugging Face class of the family uses in transformers >= 4.52: a causal LM without a
// projector, Idefics3's text_model for SmolVLM's projector, the VLM's language_model otherwise
// (Qwen2-VL, Qwen2.5-VL, LLaVA, Gemma 3, InternVL).
func peftLayers(user, projector string) string {
	switch {
	case user != "" && user != "auto":
		return user
	case projector == "":
		return lora.PEFTLayersText
	case projector == "idefics3":
		return lora.PEFTLayersIdefics3
	default:
		return lora.PEFTLayersVLM
	}
}

// peftBaseName is what adapter_config.json records as base_model_name_or_path: the Hugging Face
// repository the GGUF was converted from when the GGUF says so, else its name, else its path.
func peftBaseName(modelPath string) string {
	if g, err := readGGUF(modelPath); err == nil {
		for _, k := range []string{"general.source.huggingface.repository", "general.base_model.0.repo_url", "general.name"} {
			if v := g.String(k); v != "" {
				return v
			}
		}
	}
	return absPath(modelPath)
}

func dtypeKind(d string) uint32 {
	if d == "f32" {
		return lora.TypeF32
	}
	return lora.TypeF16
}

// chatTemplate converts the base model's chat template, nil when it has none Ollama-convertible.
func chatTemplate(modelPath string) (*ChatTemplate, error) {
	g, err := readGGUF(modelPath)
	if err != nil {
		return nil, fmt.Errorf("base model: %w", err)
	}
	jinja := g.String("tokenizer.chat_template")
	ct, ok := ConvertChatTemplate(jinja)
	if !ok {
		if jinja != "" {
			log.Warn().Str("model", modelPath).Msg("chat template not recognised; the Modelfile has no TEMPLATE and Ollama will guess")
		}
		return nil, nil
	}
	return &ct, nil
}

func writeModelfile(path string, m OllamaModel) error {
	text, err := Modelfile(m)
	if err != nil {
		return err
	}
	return writeAtomic(path, func(w io.Writer) error {
		_, err := io.WriteString(w, text)
		return err
	})
}

func copyFile(from, to string) error {
	f, err := os.Open(from)
	if err != nil {
		return err
	}
	defer f.Close()
	return writeAtomic(to, func(w io.Writer) error {
		_, err := io.Copy(w, f)
		return err
	})
}

func checkOllama(ctx context.Context, opt Options) error {
	if !model.ParseName(opt.Create).IsValid() {
		return errBadName(opt.Create)
	}
	client, base, err := OllamaClient(opt.Host)
	if err != nil {
		return err
	}
	if err := client.Heartbeat(ctx); err != nil {
		return errUnreachable(base, err)
	}
	return nil
}

func create(ctx context.Context, opt Options, m OllamaModel) error {
	client, base, err := OllamaClient(opt.Host)
	if err != nil {
		return err
	}
	return CreateInOllama(ctx, client, base, m, opt.Progress)
}

func absPath(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
