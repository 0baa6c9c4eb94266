package main

import (
	"strings"
	"testing"

	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// TestBenchRollout runs `vzlocal bench rollout` on the tiny model: one table row per group size.
func TestBenchRollout(t *testing.T) {
	files, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "llava", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := vzlocalCmd("bench", "rollout", "--model", files.Text, "--mmproj", files.MMProj,
		"--g", "1,2", "--tokens", "4", "--rounds", "1", "--threads", "1").Output()
	if err != nil {
		t.Fatalf("bench rollout: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "ratio") {
		t.Fatalf("unexpected output:\n%s", out)
	}
	if _, err := vzlocalCmd("bench", "rollout", "--model", files.Text, "--g", "0").Output(); err == nil {
		t.Fatal("group size 0 accepted")
	}
}
