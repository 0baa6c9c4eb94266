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
	child := exec.Command(os.Args[0], "-test.short", "-test.count=1", "-test.v",
		"-test.skip", "^(TestEngineOnCPUEmulation|TestFlashKernelsOnCPU|TestRandomGGUFLoadsInLlamaCpp)$")
	child.Env = append(os.Environ(), "VZLOCAL_CUDA_LIB="+lib)
	out, err := child.CombinedOutput()
	t.Logf("\n%s", out)
	if err != nil {
		t.Fatalf("the tests on the emulated engine: %v", err)
	}
	// Each GPU test must have run, not skipped: a skip here means the library did not load.
	if strings.Contains(string(out), skipNoGPU) {
		t.Fatal("a GPU test skipped on the emulated engine")
	}
}
