package train

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vzlocal/vzlocal/llm/testmodel"
	"github.com/vzlocal/vzlocal/lora"
)

func TestCheckpointSaveLatestPrune(t *testing.T) {
	run := t.TempDir()
	_, _, ok, err := LatestCheckpoint(run)
	require.NoError(t, err)
	require.False(t, ok)

	for step := 1; step <= 4; step++ {
		_, err := SaveCheckpoint(run, step, 2, func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "state.json"), []byte{byte('0' + step)}, 0o644)
		})
		require.NoError(t, err)
	}
	dir, step, ok, err := LatestCheckpoint(run)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 4, step)
	b, _ := os.ReadFile(filepath.Join(dir, "state.json"))
	require.Equal(t, "4", string(b))
	entries, _ := os.ReadDir(filepath.Join(run, checkpointsDir))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.ElementsMatch(t, []string{"latest", "step-000003", "step-000004"}, names)
}

func TestCheckpointFailedFillKeepsPrevious(t *testing.T) {
	run := t.TempDir()
	_, err := SaveCheckpoint(run, 1, 0, func(dir string) error { return nil })
	require.NoError(t, err)
	_, err = SaveCheckpoint(run, 2, 0, func(dir string) error { return errors.New("disk full") })
	require.ErrorContains(t, err, "disk full")
	_, step, ok, err := LatestCheckpoint(run)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 1, step)
	entries, _ := os.ReadDir(filepath.Join(run, checkpointsDir))
	require.Len(t, entries, 2, "half-written checkpoint left behind")
}

func TestLatestCheckpointCorrupt(t *testing.T) {
	run := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(run, checkpointsDir), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(run, checkpointsDir, latestFile), []byte("garbage"), 0o644))
	_, _, _, err := LatestCheckpoint(run)
	require.ErrorContains(t, err, "not a checkpoint")
}

// TestResumeDropsCheckpointNewerThanLatest: a run killed between renaming a checkpoint into place
// and writing latest leaves a folder newer than latest; the resume removes it, so pruning later
// never deletes the checkpoint latest names.
func TestResumeDropsCheckpointNewerThanLatest(t *testing.T) {
	run := t.TempDir()
	fill := func(dir string) error { return os.WriteFile(filepath.Join(dir, "state.json"), []byte("{}"), 0o644) }
	_, err := SaveCheckpoint(run, 1, 1, fill)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(run, checkpointsDir, checkpointName(3)), 0o755)) // killed before latest
	removeStaleTemps(run)
	_, err = SaveCheckpoint(run, 2, 1, fill) // the resumed run's next checkpoint
	require.NoError(t, err)
	dir, step, ok, err := LatestCheckpoint(run)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 2, step)
	require.DirExists(t, dir)
}

// TestRunAdapterLinksTheCheckpoint: adapter.gguf in the run folder is the newest checkpoint's
// adapter file itself (a hard link, not a second write), and outlives that checkpoint's pruning.
func TestRunAdapterLinksTheCheckpoint(t *testing.T) {
	files, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "llava", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	model, cpu := openTiny(t, files)
	cfg, game := digitRun(t, 3, 2, 2)
	cfg.CheckpointEvery, cfg.KeepCheckpoints = 1, 1
	_, run := trainDigit(t, model, cpu, cfg, game)
	dir, step, ok, err := LatestCheckpoint(run)
	if err != nil || !ok || step != 3 {
		t.Fatalf("latest checkpoint %s step %d ok %v err %v", dir, step, ok, err)
	}
	a, err := os.Stat(filepath.Join(run, AdapterFile))
	if err != nil {
		t.Fatal(err)
	}
	c, err := os.Stat(filepath.Join(dir, game.Adapters()[0]+".gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(a, c) {
		t.Fatal("adapter.gguf is a separate copy of the checkpoint's adapter")
	}
	if _, err := lora.ReadAdapterGGUF(filepath.Join(run, AdapterFile), cpu.Config()); err != nil {
		t.Fatal(err)
	}
}
