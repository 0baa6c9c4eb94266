package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/rs/zerolog/log"
	"golang.org/x/term"

	"github.com/vzlocal/vzlocal/export"
)

// exportCmd is `vzlocal export`: a trained adapter as a llama.cpp GGUF, an Ollama model, a PEFT
// folder or a merged GGUF.
type exportCmd struct {
	Config configFile `help:"YAML/JSON file with flag values (flags given on the command line win)."`

	Input      string  `arg:"" name:"RUNDIR|ADAPTER" help:"Training run folder (adapter.gguf + config.json) or a llama.cpp LoRA GGUF." type:"existingpath"`
	Format     string  `help:"ollama (adapter + Modelfile), gguf (llama.cpp adapter), peft, or merged (adapter folded into the base)." default:"ollama" enum:"ollama,gguf,peft,merged"`
	Out        string  `help:"Output folder." required:"" type:"path"`
	Base       string  `help:"Base text model GGUF (default: \"model\" from RUNDIR/config.json)." type:"path"`
	MMProj     string  `name:"mmproj" help:"Base vision projector GGUF (default: \"mmproj\" from RUNDIR/config.json)." type:"path"`
	DType      string  `name:"dtype" help:"Adapter tensor type for gguf/ollama." default:"f16" enum:"f16,f32"`
	Quant      string  `help:"merged: type of the folded weights: keep (the base's own), f16, f32, q8_0, q4_K, q6_K, ..." default:"keep"`
	Scale      float32 `help:"The llama.cpp adapter scale the adapter was used with; baked into alpha (Ollama applies 1.0)." default:"1"`
	Create     string  `help:"ollama/merged: also create this model on the Ollama server."`
	PEFTLayers string  `name:"peft-layers" help:"peft: module path of the decoder layers in the Hugging Face model (model.layers for a causal LM, model.language_model.layers for Qwen2-VL/LLaVA/Gemma 3/InternVL, model.text_model.layers for SmolVLM); auto picks it from the projector." default:"auto"`
	Host       string  `help:"Ollama server (host:port or URL); default OLLAMA_HOST or 127.0.0.1:11434."`
}

func (c *exportCmd) Run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	src, err := export.ResolveSource(c.Input, c.Base, c.MMProj)
	if err != nil {
		return err
	}
	opt := export.Options{
		Format: c.Format, Out: c.Out, DType: c.DType, Quant: c.Quant, Scale: c.Scale,
		Create: c.Create, Host: c.Host, PEFTLayers: c.PEFTLayers,
	}
	if term.IsTerminal(int(os.Stderr.Fd())) {
		opt.Progress = os.Stderr
	}
	log.Info().Str("adapter", src.Adapter).Str("base", src.Model).Str("mmproj", src.MMProj).Str("format", c.Format).Msg("export")
	res, err := export.Export(ctx, src, opt)
	if err != nil {
		return err
	}
	if res.Merge != nil {
		log.Info().Int("folded", res.Merge.Folded).Int("copied", res.Merge.Copied).Any("types", res.Merge.Types).
			Dur("elapsed", res.Merge.Elapsed).Msg("merged")
	}
	fmt.Println("wrote " + strings.Join(res.Files, "\n      "))
	if res.Created != "" {
		fmt.Printf("created Ollama model %s: ollama run %s\n", res.Created, res.Created)
	}
	return nil
}
