package main

import (
	"fmt"
	"strings"

	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// testmodelCmd writes a deterministic random tiny VLM (text GGUF + mmproj GGUF) that llama.cpp loads
// like a real model; the sizes can be raised for benchmark-sized text models.
type testmodelCmd struct {
	Out        string  `help:"Output directory (created if missing)." required:"" type:"path"`
	Seed       int64   `help:"Seed of the random weights." default:"1"`
	Family     string  `help:"Model family: llava, qwen2vl, gemma3, smolvlm, internvl." default:"llava"`
	WeightType string  `help:"Weight type of the matrices: f32, f16, q8_0." default:"f32"`
	Layers     int     `help:"Text layers (0 = family default)."`
	Embd       int     `help:"Text embedding width (0 = 64)."`
	Heads      int     `help:"Attention heads (0 = 4)."`
	KVHeads    int     `name:"kv-heads" help:"KV heads (0 = 2)."`
	FFN        int     `name:"ffn" help:"Feed-forward width (0 = 128)."`
	Vocab      int     `help:"Vocabulary size; pads the 324-token tiny vocabulary (0 = 324)."`
	NoMMProj   bool    `name:"no-mmproj" help:"Write the text model only (benchmark models)."`
	WeightStd  float32 `help:"Standard deviation of the random weights (0 = 0.02)."`
}

func (c *testmodelCmd) Run() error {
	files, err := testmodel.Write(c.Out, testmodel.Config{
		Family: strings.ToLower(c.Family), Seed: c.Seed, WeightType: strings.ToLower(c.WeightType),
		Layers: c.Layers, Embd: c.Embd, Heads: c.Heads, KVHeads: c.KVHeads, FFN: c.FFN,
		Vocab: c.Vocab, NoMMProj: c.NoMMProj, WeightStd: c.WeightStd,
	})
	if err != nil {
		return err
	}
	fmt.Println(files.Text)
	if files.MMProj != "" {
		fmt.Println(files.MMProj)
	}
	return nil
}
