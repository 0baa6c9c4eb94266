package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vzlocal/vzlocal/llm/testmodel"
	"github.com/vzlocal/vzlocal/lora/cuda"
)

// TestTrainOnGPU runs `vzlocal train --engine cuda` for a few steps with the trainer's defaults
// (bf16, the base kept as the file's blocks, kept activations given back after each update) and,
// where ggml's CUDA backend is installed (OLLAMA_LIBRARY_PATH names it, as lora/cuda/env.sh sets
// it), the rollouts on the GPU too: the two share the device, step after step. The adapter left
// on disk must load in llama.cpp. It needs the CUDA engine (skips otherwise; lora/cuda/
// gpu_session.sh train runs it). That the updates learn is TestToyRewardLearnsOnGPU's part (the
// random model's spy games all end with the same reward: no advantage, no gradient).
func TestTrainOnGPU(t *testing.T) {
	if ok, msg := cuda.Available(); !ok {
		t.Skipf("needs libvzlocal_cuda.so and a GPU: %s", msg)
	}
	files, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "llava", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(t.TempDir(), "run")
	const steps = 3
	cmd := vzlocalCmd("--log-json", "train", "--model", files.Text, "--mmproj", files.MMProj, "--data", "clevr",
		"--data-n", "8", "--steps", "3", "--games-per-step", "2", "--checkpoint-every", "2", "--seed", "3",
		"--spy-observer-samples", "2", "--spy-clue-max-tokens", "8", "--spy-decision-max-tokens", "8",
		"--lora-rank", "4", "--engine", "cuda", "--out", run)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("vzlocal train --engine cuda: %v\n%s", err, out)
	}
	logs := string(out)
	var engine, rollouts map[string]any
	for _, line := range strings.Split(logs, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) != nil {
			continue
		}
		switch msg, _ := m["message"].(string); {
		case msg == "gradient engine":
			engine = m
		case strings.HasPrefix(msg, "llm: rollouts on"):
			rollouts = m
		}
	}
	t.Logf("gradient engine: %v; rollouts: %v", engine, rollouts)
	if engine == nil || engine["engine"] != "cuda" {
		t.Errorf("no CUDA gradient engine in the log:\n%s", logs)
	}
	if strings.Contains(os.Getenv("OLLAMA_LIBRARY_PATH"), "cuda") {
		if msg, _ := rollouts["message"].(string); msg != "llm: rollouts on the GPU" {
			t.Errorf("ggml's CUDA backend is installed but the rollouts did not use it: %v", rollouts)
		}
	}
	checkRunLeft(t, files, run, steps)
}
