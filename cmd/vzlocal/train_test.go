package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/llm/testmodel"
	"github.com/vzlocal/vzlocal/lora"
	"github.com/vzlocal/vzlocal/selfplay/train"
)

// vzlocalCmd runs the vzlocal command line in a child process (see TestMain).
func vzlocalCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "VZLOCAL_RUN_MAIN=1")
	return cmd
}

// TestTrainKillAndResume kills `vzlocal train` with SIGKILL once it has checkpointed, resumes it
// with --resume, and checks that no step was lost or repeated and that the adapter on disk is
// valid (read by the gradient engine and loaded by llama.cpp).
func TestTrainKillAndResume(t *testing.T) {
	files, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "llava", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(t.TempDir(), "run")
	args := []string{"--log-json", "train", "--model", files.Text, "--mmproj", files.MMProj, "--data", "clevr", "--data-n", "6",
		"--steps", "6", "--games-per-step", "1", "--checkpoint-every", "1", "--threads", "1", "--seed", "3",
		"--spy-observer-samples", "2", "--spy-clue-max-tokens", "8", "--spy-decision-max-tokens", "8",
		"--lora-rank", "2", "--out", run}
	cmd := vzlocalCmd(args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if _, step, ok, _ := train.LatestCheckpoint(run); ok && step >= 2 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no checkpoint of step 2 within 3 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	_, killedAt, _, _ := train.LatestCheckpoint(run)
	t.Logf("killed after checkpoint of step %d", killedAt)

	resume := vzlocalCmd("--log-json", "train", "--resume", run)
	if out, err := resume.CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	checkRunLeft(t, files, run, 6)
	entries, _ := os.ReadDir(filepath.Join(run, "checkpoints"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp") {
			t.Fatalf("temporary checkpoint %s left after resume", e.Name())
		}
	}
}

// checkRunLeft checks what a finished run left: metrics.jsonl with steps 0..steps-1, none lost
// or repeated, and an adapter that the gradient engine reads and llama.cpp loads.
func checkRunLeft(t *testing.T, files testmodel.Files, run string, steps int) {
	t.Helper()
	f, err := os.Open(filepath.Join(run, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []int
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m struct{ Step int }
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		got = append(got, m.Step)
	}
	for i, s := range got {
		if s != i {
			t.Fatalf("steps in metrics.jsonl %v: lost or repeated", got)
		}
	}
	if len(got) != steps {
		t.Fatalf("%d steps recorded, want %d", len(got), steps)
	}
	cfg, err := lora.ReadConfig(files.Text)
	if err != nil {
		t.Fatal(err)
	}
	adapter := filepath.Join(run, train.AdapterFile)
	if _, err := lora.ReadAdapterGGUF(adapter, cfg); err != nil {
		t.Fatal(err)
	}
	m, err := llm.Load(files.Text, "", llm.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	a, err := m.LoadAdapter(adapter)
	if err != nil {
		t.Fatalf("llama.cpp refuses the adapter left on disk: %v", err)
	}
	a.Free()
}

// TestTrainEvalAndReport trains a short run with a scheduled evaluation every step, then renders
// `vzlocal report` on it: eval.jsonl must hold one record per evaluation and the page every chart
// the run measured.
func TestTrainEvalAndReport(t *testing.T) {
	files, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "llava", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(t.TempDir(), "run")
	trainRun := vzlocalCmd("--log-json", "train", "--model", files.Text, "--mmproj", files.MMProj, "--data", "clevr", "--data-n", "8",
		"--held-out", "0.3", "--steps", "2", "--games-per-step", "1", "--threads", "1", "--seed", "4",
		"--spy-players", "3", "--spy-rounds", "1", "--spy-observer-samples", "2", "--spy-clue-max-tokens", "8",
		"--spy-decision-max-tokens", "8", "--lora-rank", "2", "--eval-every", "1", "--eval-games", "2", "--out", run)
	if out, err := trainRun.CombinedOutput(); err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(run, "eval.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 2 {
		t.Fatalf("eval.jsonl has %d records, want 2:\n%s", n, b)
	}
	out := filepath.Join(t.TempDir(), "report")
	rep := vzlocalCmd("report", run, "--out", out)
	if b, err := rep.CombinedOutput(); err != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	page, err := os.ReadFile(filepath.Join(out, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	pngs, _ := filepath.Glob(filepath.Join(out, "*.png"))
	if len(pngs) < 5 {
		t.Fatalf("report wrote %d charts: %v", len(pngs), pngs)
	}
	for _, p := range pngs {
		if !strings.Contains(string(page), filepath.Base(p)) {
			t.Fatalf("page does not show %s", filepath.Base(p))
		}
	}
	if !strings.Contains(string(page), "win") {
		t.Fatal("page has no win-rate section")
	}
}

// TestRefusedResumeKeepsRunFlags: a --resume refused for another config must not record its
// flags as the run's: a plain --resume afterwards still works.
func TestRefusedResumeKeepsRunFlags(t *testing.T) {
	files, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "llava", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(t.TempDir(), "run")
	first := vzlocalCmd("--log-json", "train", "--model", files.Text, "--mmproj", files.MMProj, "--data", "clevr", "--data-n", "4",
		"--held-out", "0", "--steps", "1", "--games-per-step", "1", "--threads", "1", "--spy-players", "3", "--spy-rounds", "1",
		"--spy-observer-samples", "2", "--spy-clue-max-tokens", "4", "--spy-decision-max-tokens", "4", "--lora-rank", "2", "--out", run)
	if out, err := first.CombinedOutput(); err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	refused := vzlocalCmd("--log-json", "train", "--resume", run, "--lora-rank", "4")
	if out, err := refused.CombinedOutput(); err == nil || !strings.Contains(string(out), "lora.rank") {
		t.Fatalf("resume with another rank: %v\n%s", err, out)
	}
	again := vzlocalCmd("--log-json", "train", "--resume", run)
	if out, err := again.CombinedOutput(); err != nil {
		t.Fatalf("plain resume after a refused one: %v\n%s", err, out)
	}
	odd := vzlocalCmd("--log-json", "train", "--resume", run, "--eval-every", "1", "--eval-games", "3")
	if out, err := odd.CombinedOutput(); err == nil || !strings.Contains(string(out), "odd") {
		t.Fatalf("resume with odd --eval-games: %v\n%s", err, out)
	}
	again = vzlocalCmd("--log-json", "train", "--resume", run)
	if out, err := again.CombinedOutput(); err != nil {
		t.Fatalf("plain resume after a refused --eval-games: %v\n%s", err, out)
	}
}

// TestTrainRefusesTheOtherGamesFlags: a flag of the other game would be ignored: it is refused.
func TestTrainRefusesTheOtherGamesFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--game", "qs", "--spy-temperature", "0.5"},
		{"--game", "qs", "--switch-rule", "cycle"},
		{"--qs-questions", "2"},
	} {
		cmd := vzlocalCmd(append([]string{"train", "--model", "m.gguf", "--mmproj", "p.gguf", "--out", t.TempDir()}, args...)...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "is a setting of") {
			t.Errorf("train %v: %v\n%s", args, err, out)
		}
	}
}
