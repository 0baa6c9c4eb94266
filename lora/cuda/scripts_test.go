package cuda

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGPUScripts: the GPU session's scripts parse (a syntax error would cost a GPU session's
// scarce minutes), and gpu_session.sh quick keeps to its budget: with none left it starts no
// step, says which it skipped and why in $OUT/quick.txt, and fails.
func TestGPUScripts(t *testing.T) {
	scripts, err := filepath.Glob("*.sh")
	if err != nil || len(scripts) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, s := range append(scripts, "emu/mutants.sh") {
		if out, err := exec.Command("bash", "-n", s).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", s, err, out)
		}
	}
	dir := t.TempDir()
	cmd := exec.Command("bash", "gpu_session.sh", "quick")
	cmd.Env = append(os.Environ(), "OUT="+dir, "QUICK_BUDGET=0")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Errorf("quick with no budget succeeded:\n%s", out)
	}
	summary, rerr := os.ReadFile(filepath.Join(dir, "quick.txt"))
	if rerr != nil {
		t.Fatalf("no quick.txt: %v\n%s", rerr, out)
	}
	// The first step that needs time: unpack without an unpacked bundle, build with one.
	if !strings.Contains(string(summary), "skipped (0s left, needs ~") {
		t.Errorf("quick.txt does not say a step was skipped for the budget:\n%s", summary)
	}
	if strings.Contains(string(summary), "rc=") {
		t.Errorf("a step ran with no budget:\n%s", summary)
	}
}
