package cuda

import (
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// captureStderr runs f with file descriptor 2 (where the library's C code writes) sent to a file,
// and returns what was written.
func captureStderr(t *testing.T, f func()) string {
	t.Helper()
	tmp, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer tmp.Close()
	saved, err := syscall.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Dup3(int(tmp.Fd()), 2, 0); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if err := syscall.Dup3(saved, 2, 0); err != nil {
				t.Errorf("restoring stderr: %v", err)
			}
			syscall.Close(saved)
		}()
		f()
	}()
	out, err := os.ReadFile(tmp.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

var (
	profHeader = regexp.MustCompile(`vz_run operations: rows (\d+), compute stream ([0-9.]+) ms \((\d+) events\):((?: \w+ [0-9.]+)+)`)
	profRow    = regexp.MustCompile(`(?m)^vz_run op  (\S+(?: stream)?)\s+(\S+)\s+(\d+)\s+([0-9.]+)\s+[0-9.]+%\s+([0-9.]*)\s+(.+)$`)
)

// TestOperationProfile: VZLOCAL_CUDA_PROFILE=2 prints, after each pass, every operation's time by
// phase (kernels by launcher, GEMMs by shape with their rate, the copy and dequantization streams'
// work apart), and the compute stream's rows add up to its total. The pass itself is unchanged
// (its results within the usual tolerances). The quantized fixture in BF16 with flash attention
// and two kept blocks runs every kind of operation: dequantization ahead, restore and
// recomputation, the folded FFN, the per-layer gradient download.
func TestOperationProfile(t *testing.T) {
	needGPU(t)
	path, m, ad, b, w, ref := quantCase(t)
	t.Setenv("VZLOCAL_CUDA_PROFILE", "2")
	out := captureStderr(t, func() {
		res, _, _ := backwardOn(t, m, Options{Precision: BF16, GGUF: path, Attention: AttnFlash, KeepLayers: 2}, ad, b, w)
		d := diffResults(res, ref)
		if tol := tolerances["tiny"][BF16]; !(d.lpRel <= tol.lpRel) || !(d.grad <= tol.grad) {
			t.Errorf("profiled pass beyond the tolerances: %s", d)
		}
	})
	t.Logf("report:\n%s", out)
	h := profHeader.FindStringSubmatch(out)
	if h == nil {
		t.Fatalf("no operations header in the report")
	}
	if rows, _ := strconv.Atoi(h[1]); rows <= 0 {
		t.Errorf("rows %d", rows)
	}
	total, _ := strconv.ParseFloat(h[2], 64)
	var phases float64
	fields := strings.Fields(h[4]) // name, ms pairs
	for i := 1; i < len(fields); i += 2 {
		v, _ := strconv.ParseFloat(fields[i], 64)
		phases += v
	}
	seen := map[string]bool{}
	var compute float64
	nrows := 0
	for _, r := range profRow.FindAllStringSubmatch(out, -1) {
		ms, _ := strconv.ParseFloat(r[4], 64)
		name := r[6]
		nrows++
		if r[1] == "compute" {
			compute += ms
		}
		key := r[1] + " " + strings.Fields(name)[0]
		seen[key] = true
		if strings.HasPrefix(name, "gemm ") && r[5] == "" && ms > 0 {
			t.Errorf("GEMM row without a rate: %s", r[0])
		}
	}
	// Rows are printed to 3 decimals, the header to 1; the sums agree to that rounding.
	slack := 5e-4*float64(nrows) + 0.05 + 1e-6*total
	if d := compute - total; d > slack || d < -slack {
		t.Errorf("compute rows sum to %.3f ms, header says %.3f", compute, total)
	}
	if d := math.Abs(phases - total); d > 0.05*float64(len(fields)/2)+1e-6*total {
		t.Errorf("phases sum to %.3f ms, header says %.3f", phases, total)
	}
	for _, want := range []string{"compute gemm", "compute flash_fwd", "compute flash_bwd", "compute k_rmsnorm_bwd",
		"compute k_swiglu_fwd", "compute wait", "dequant stream idle", "dequant stream k_dequant", "copy stream gradients"} {
		if !seen[want] {
			t.Errorf("no %q row in the report", want)
		}
	}
}
