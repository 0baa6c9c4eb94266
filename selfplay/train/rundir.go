package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vzlocal/vzlocal/internal/atomicfile"
)

// Files of a run folder.
const (
	ConfigFile  = "config.json"
	MetricsFile = "metrics.jsonl"
	GamesFile   = "games.jsonl"
	EvalFile    = "eval.jsonl"   // scheduled evaluations, one record per evaluation
	AdapterFile = "adapter.gguf" // the newest trained adapter (the first game adapter), for export
	adaptersDir = "adapters"     // every adapter and snapshot llama.cpp has loaded
)

// jsonlLog appends JSON lines to a run file. Checkpoints record each log's size, and a resume
// truncates the log back to it, so a killed run repeats no step and loses none.
type jsonlLog struct {
	path string
	f    *os.File
}

func openLog(path string, truncateTo int64) (*jsonlLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("run log: %w", err)
	}
	if err := f.Truncate(truncateTo); err != nil {
		f.Close()
		return nil, fmt.Errorf("run log %s: %w", path, err)
	}
	if _, err := f.Seek(truncateTo, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("run log %s: %w", path, err)
	}
	return &jsonlLog{path: path, f: f}, nil
}

func (l *jsonlLog) append(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("run log %s: %w", l.path, err)
	}
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("run log %s: %w", l.path, err)
	}
	return nil
}

// size is what a checkpoint records; it syncs first so the recorded bytes are on disk.
func (l *jsonlLog) size() (int64, error) {
	if err := l.f.Sync(); err != nil {
		return 0, fmt.Errorf("run log %s: %w", l.path, err)
	}
	st, err := l.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("run log %s: %w", l.path, err)
	}
	return st.Size(), nil
}

func (l *jsonlLog) close() error { return l.f.Close() }

// WriteConfig saves the run's config (atomically).
func WriteConfig(runDir string, cfg Config) error {
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(runDir, ConfigFile), append(b, '\n'))
}

// ReadConfig loads a run's saved config.
func ReadConfig(runDir string) (Config, error) {
	var cfg Config
	b, err := os.ReadFile(filepath.Join(runDir, ConfigFile))
	if err != nil {
		return cfg, fmt.Errorf("run %s: %w", runDir, err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("run %s: %s: %w", runDir, ConfigFile, err)
	}
	return cfg, nil
}

// resumableDiff lists config differences that forbid resuming: anything that changes what a
// step computes. The step budget, threads, checkpointing and evaluation cadence may change.
func resumableDiff(saved, now Config) []string {
	return Diff(saved, now, "Steps", "Threads", "CheckpointEvery", "KeepCheckpoints", "EvalEvery", "EvalGames", "Engine", "CUDAAttention", "CUDAKeepLayers")
}
