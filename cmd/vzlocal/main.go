// Command vzlocal improves a vision-language model by self-play on one workstation: it plays visual
// games against copies of itself and trains a LoRA adapter from the outcomes.
package main

import (
	"os"

	"github.com/alecthomas/kong"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/log"
	"golang.org/x/term"
)

// cli is the whole command line; each command lives in its own file.
type cli struct {
	LogLevel string `help:"Log level: debug, info, warn, error." default:"info" enum:"trace,debug,info,warn,error"`
	LogJSON  bool   `help:"Structured JSON logs even on a terminal."`

	Testmodel testmodelCmd `cmd:"" help:"Write a deterministic random tiny VLM (text GGUF + mmproj) for tests."`
	Data      dataCmd      `cmd:"" help:"Make image pairs: CLEVR-style scenes, charts, or pairs from your photos."`
	Play      playCmd      `cmd:"" help:"Play games and watch them (no training)."`
	Train     trainCmd     `cmd:"" help:"Train a LoRA adapter by self-play."`
	Eval      evalCmd      `cmd:"" help:"Win rate of a trained adapter against the base or another adapter."`
	Report    reportCmd    `cmd:"" help:"Plots and an HTML page for one or more runs."`
	Export    exportCmd    `cmd:"" help:"Export an adapter: llama.cpp GGUF, Ollama, PEFT or a merged GGUF."`
	Bench     benchCmd     `cmd:"" help:"Benchmarks (see bench/README.md)."`
}

func main() {
	var c cli
	ctx := kong.Parse(&c, kong.Name("vzlocal"),
		kong.Description("Self-play training of vision-language models with LoRA, on one workstation."),
		kong.UsageOnError())
	setupLogging(c.LogLevel, c.LogJSON)
	ctx.FatalIfErrorf(ctx.Run())
}

// setupLogging writes human-readable logs on a terminal and zerolog JSON lines otherwise.
func setupLogging(level string, forceJSON bool) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	zerolog.SetGlobalLevel(lvl)
	if !forceJSON && term.IsTerminal(int(os.Stderr.Fd())) {
		log.Logger = log.Output(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05"})
	} else {
		log.Logger = zerolog.New(os.Stderr).With().Timestamp().Logger()
	}
}
