package train

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/vzlocal/vzlocal/internal/atomicfile"
)

// A run folder holds config.json, metrics.jsonl, games.jsonl, adapter.gguf (the newest adapter)
// and checkpoints/step-NNNNNN/ folders. checkpoints/latest names the newest complete checkpoint;
// it is written only after the checkpoint folder is complete and renamed into place, so a run
// killed at any moment resumes from a whole checkpoint.
const (
	checkpointsDir = "checkpoints"
	latestFile     = "latest"
)

func checkpointName(step int) string { return fmt.Sprintf("step-%06d", step) }

// SaveCheckpoint writes a checkpoint for step: fill writes the files into a fresh temporary
// folder, which is then renamed to step-NNNNNN and recorded as latest. Older checkpoints beyond
// keep are removed (keep <= 0 keeps all).
func SaveCheckpoint(runDir string, step, keep int, fill func(dir string) error) (string, error) {
	root := filepath.Join(runDir, checkpointsDir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	tmp, err := os.MkdirTemp(root, ".tmp-"+checkpointName(step)+"-")
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	if err := fill(tmp); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("checkpoint step %d: %w", step, err)
	}
	final := filepath.Join(root, checkpointName(step))
	os.RemoveAll(final) // a re-run of the same step after a resume replaces it
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("checkpoint step %d: %w", step, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(root, latestFile), []byte(checkpointName(step)+"\n")); err != nil {
		return "", err
	}
	prune(root, keep)
	return final, nil
}

// LatestCheckpoint returns the newest complete checkpoint folder and its step; ok is false for
// a run that has none yet.
func LatestCheckpoint(runDir string) (dir string, step int, ok bool, err error) {
	root := filepath.Join(runDir, checkpointsDir)
	b, err := os.ReadFile(filepath.Join(root, latestFile))
	if os.IsNotExist(err) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("run %s: %w", runDir, err)
	}
	name := strings.TrimSpace(string(b))
	step, err = strconv.Atoi(strings.TrimPrefix(name, "step-"))
	if err != nil || !strings.HasPrefix(name, "step-") {
		return "", 0, false, fmt.Errorf("run %s: %s names %q, not a checkpoint", runDir, filepath.Join(root, latestFile), name)
	}
	dir = filepath.Join(root, name)
	if _, err := os.Stat(dir); err != nil {
		return "", 0, false, fmt.Errorf("run %s: latest checkpoint: %w", runDir, err)
	}
	return dir, step, true, nil
}

// prune removes all but the newest keep checkpoints and any temporary folder a killed run left.
func prune(root string, keep int) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	var steps []string
	for _, e := range entries {
		switch {
		case strings.HasPrefix(e.Name(), ".tmp-"):
			// A temp folder of a checkpoint being written now has a newer step than any
			// complete one; only a killed run's leftovers are older.
			continue
		case e.IsDir() && strings.HasPrefix(e.Name(), "step-"):
			steps = append(steps, e.Name())
		}
	}
	sort.Strings(steps)
	if keep > 0 && len(steps) > keep {
		for _, s := range steps[:len(steps)-keep] {
			os.RemoveAll(filepath.Join(root, s))
		}
	}
}

// removeStaleTemps deletes what a killed run left beside its newest complete checkpoint: temporary
// checkpoint folders, and checkpoint folders newer than checkpoints/latest (renamed into place
// just before the kill, before latest named them). A resume continues from latest; such a folder
// would otherwise outrank it in prune, which could then delete the checkpoint latest names.
// Called on resume.
func removeStaleTemps(runDir string) {
	root := filepath.Join(runDir, checkpointsDir)
	_, latest, ok, err := LatestCheckpoint(runDir)
	if err != nil {
		return // keep everything: the run cannot resume anyway, and the error says why
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".tmp-") {
			os.RemoveAll(filepath.Join(root, name))
			continue
		}
		step, err := strconv.Atoi(strings.TrimPrefix(name, "step-"))
		if e.IsDir() && strings.HasPrefix(name, "step-") && err == nil && (!ok || step > latest) {
			os.RemoveAll(filepath.Join(root, name))
		}
	}
}
