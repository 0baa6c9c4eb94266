package train

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vzlocal/vzlocal/lora"
	"github.com/vzlocal/vzlocal/lora/cuda"
)

// TestEngineSelection: auto falls back to the CPU engine where CUDA cannot run, --engine cuda
// says why instead of falling back, and an unknown engine is refused.
func TestEngineSelection(t *testing.T) {
	files := tinyFiles(t)
	if ok, _ := cuda.Available(); ok {
		t.Skip("a GPU is present: the fallback cannot be observed here")
	}
	e, err := openEngine("auto", files.Text, 1, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.(*lora.CPU); !ok {
		t.Fatalf("auto without a GPU gave %T, want the CPU engine", e)
	}
	if _, err := openEngine("cuda", files.Text, 1, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "--engine cuda") {
		t.Fatalf("--engine cuda without a GPU: %v", err)
	}
	if _, err := openEngine("tpu", files.Text, 1, zerolog.Nop()); err == nil {
		t.Fatal("unknown engine accepted")
	}
}
