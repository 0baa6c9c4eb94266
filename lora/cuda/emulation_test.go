package cuda

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEngineOnCPUEmulation builds the whole CUDA engine (csrc/, unchanged but for the launch
// syntax) for emu/, a CPU emulation of the CUDA runtime, the kernels' execution model and the
// cuBLAS GEMMs (build.sh emu), and runs this package's tests again in a child process with
// VZLOCAL_CUDA_LIB pointing at it: the parity tests against the CPU reference, the flash, keep
// and quantized paths, the error paths. So every machine (CI has no GPU) checks the engine's
// indexing, buffer layout, launch geometry and synchronization; the tensor cores, cuBLAS itself,
// speed and memory are checked on a GPU (docs/cuda.md). -test.short: the Qwen2.5-0.5B-sized
// cases are for GPUs.
func TestEngineOnCPUEmulation(t *testing.T) {
	if os.Getenv("VZLOCAL_CUDA_LIB") != "" {
		t.Skip("VZLOCAL_CUDA_LIB is set: the tests here already run on that library")
	}
	if _, err := exec.LookPath("g++"); err != nil {
		t.Skip("no g++ (make setup installs it)")
	}
	lib := filepath.Join(t.TempDir(), "libvzlocal_cuda_emu.so")
	if out, err := exec.Command("bash", "build.sh", "emu", lib).CombinedOutput(); err != nil {
		t.Fatalf("build.sh emu: %v\n%s", err, out)
	}
	// Every test with the emulation's default stream order ("lazy"), then the tests whose passes
	// use several streams (the gradients' copy stream, the quantized path's dequantization stream)
	// with the other order: between them, a missing wait in either direction shows (emu/runtime.cc).
	for _, run := range []struct{ order, args string }{
		{"lazy", "-test.skip=^(TestEngineOnCPUEmulation|TestFlashKernelsOnCPU|TestRandomGGUFLoadsInLlamaCpp)$"},
		{"others-first", "-test.run=^(TestParity|TestBackwardInto|TestPassProtocol|TestQuantizedParity|TestOpenFile)$"},
	} {
		child := exec.Command(os.Args[0], "-test.short", "-test.count=1", "-test.v", run.args)
		child.Env = append(os.Environ(), "VZLOCAL_CUDA_LIB="+lib, "VZ_EMU_STREAMS="+run.order)
		out, err := child.CombinedOutput()
		t.Logf("streams %s:\n%s", run.order, out)
		if err != nil {
			t.Fatalf("the tests on the emulated engine (streams %s): %v", run.order, err)
		}
		// Each GPU test must have run, not skipped: a skip here means the library did not load.
		if strings.Contains(string(out), skipNoGPU) {
			t.Fatal("a GPU test skipped on the emulated engine")
		}
	}
}
