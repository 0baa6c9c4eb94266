package cuda

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlashKernelsOnCPU compiles csrc/flash.cuh (the flash-attention kernels the GPU runs) with the
// host C++ compiler against emu/cuda_emu.h, a CPU emulation of the CUDA subset they use, and runs
// emu/flash_emu_test.cc: forward (O, log-sum-exp) and backward (dQ, dK, dV) against a
// double-precision reference on GRPO-shaped packed batches, head_dim 64 and 128, grouped and
// plain attention. It checks the kernels' tiling, masking, online softmax and barriers on every
// machine (CI has no GPU); speed and the real tensor cores are checked on the GPU (docs/cuda.md).
func TestFlashKernelsOnCPU(t *testing.T) {
	cxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skip("no g++ (make setup installs it)")
	}
	bin := filepath.Join(t.TempDir(), "flash_emu")
	build := exec.Command(cxx, "-std=c++20", "-O2", "-pthread", "-Wall", "-Werror", "-o", bin, "emu/flash_emu_test.cc")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building emu/flash_emu_test.cc: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).CombinedOutput()
	t.Logf("\n%s", out)
	if err != nil {
		t.Fatalf("flash kernels on the CPU emulation: %v", err)
	}
	if !strings.HasSuffix(strings.TrimSpace(string(out)), "ok") {
		t.Fatal("the emulation run did not end with ok")
	}
}
