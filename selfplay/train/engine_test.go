package train

import (
	"os"
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
	e, err := openEngine("auto", "auto", 0, files.Text, 1, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.(*lora.CPU); !ok {
		t.Fatalf("auto without a GPU gave %T, want the CPU engine", e)
	}
	if _, err := openEngine("cuda", "auto", 0, files.Text, 1, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "--engine cuda") {
		t.Fatalf("--engine cuda without a GPU: %v", err)
	}
	if _, err := openEngine("tpu", "auto", 0, files.Text, 1, zerolog.Nop()); err == nil {
		t.Fatal("unknown engine accepted")
	}
	if _, err := openEngine("auto", "sdpa", 0, files.Text, 1, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "--cuda-attention") {
		t.Fatalf("unknown --cuda-attention: %v", err)
	}
	if _, err := openEngine("auto", "auto", -2, files.Text, 1, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "--cuda-keep-layers") {
		t.Fatalf("--cuda-keep-layers -2: %v", err)
	}
}

// TestEngineRefusesBaseThatCannotFit: the CPU engine's float32 copy of the base is checked against
// the memory available before anything is loaded.
func TestEngineRefusesBaseThatCannotFit(t *testing.T) {
	files := tinyFiles(t)
	need, err := float32Bytes(files.Text)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(files.Text)
	if need <= 0 || need > st.Size() {
		t.Fatalf("float32 bytes %d of an all-F32 file of %d bytes", need, st.Size())
	}
	saved := memAvailable
	defer func() { memAvailable = saved }()
	memAvailable = func() int64 { return need / 2 }
	_, err = openEngine("cpu", "auto", 0, files.Text, 1, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "float32") || !strings.Contains(err.Error(), "GiB") {
		t.Fatalf("engine on a machine without room for the base: %v", err)
	}
	memAvailable = func() int64 { return need * 100 }
	if _, err := openEngine("cpu", "auto", 0, files.Text, 1, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
}
