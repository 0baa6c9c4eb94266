package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/vzlocal/vzlocal/internal/atomicfile"

	"github.com/rs/zerolog/log"

	"github.com/vzlocal/vzlocal/selfplay"
)

// The files of a run folder that the report reads.
const (
	MetricsFile = "metrics.jsonl"
	ConfigFile  = "config.json"
	GamesFile   = "games.jsonl"
	EvalFile    = "eval.jsonl"
)

// Run is everything the report shows about one run folder.
type Run struct {
	Name  string // short name for legends: the folder's base name, made unique among compared runs
	Dir   string
	Steps []selfplay.StepMetrics // sorted by step, one per step
	// Config is config.json as written (nil when the run has none), pretty-printed.
	Config []byte
	// Evals come from eval.jsonl, or else from the Eval* fields of metrics.jsonl; sorted by step.
	Evals      []EvalRecord
	EvalSource string
	Games      GameSample
}

// LoadOptions says how much of a run to load.
type LoadOptions struct {
	SampleGames int // games to show from games.jsonl (evenly spread over the run)
}

// LoadRun reads a run folder. metrics.jsonl is required and must hold at least one step; the other
// files are optional, but when present they must be well formed: every error names the file and
// line at fault.
func LoadRun(dir string, opt LoadOptions) (*Run, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("run folder: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("run folder %s is not a folder", dir)
	}
	run := &Run{Name: filepath.Base(filepath.Clean(dir)), Dir: dir}
	if run.Steps, err = readMetrics(filepath.Join(dir, MetricsFile)); err != nil {
		return nil, err
	}
	if run.Config, err = readConfig(filepath.Join(dir, ConfigFile)); err != nil {
		return nil, err
	}
	// eval.jsonl wins when it holds records; an absent or empty one (evaluation not run yet)
	// leaves the evaluations logged inside metrics.jsonl.
	evals, err := readEvals(filepath.Join(dir, EvalFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if len(evals) > 0 {
		run.Evals, run.EvalSource = evals, EvalFile
	} else if run.Evals = evalsFromMetrics(run.Steps); len(run.Evals) > 0 {
		run.EvalSource = MetricsFile
	}
	switch games, err := sampleGames(filepath.Join(dir, GamesFile), opt.SampleGames); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		run.Games = games
	}
	log.Debug().Str("run", dir).Int("steps", len(run.Steps)).Int("evals", len(run.Evals)).
		Int("games", run.Games.Total).Msg("loaded run")
	return run, nil
}

// readMetrics reads metrics.jsonl. A resumed run logs again the steps after its last checkpoint:
// the later line of a step wins, as it describes the adapter the run went on with.
func readMetrics(path string) ([]selfplay.StepMetrics, error) {
	byStep := make(map[int]selfplay.StepMetrics)
	replaced := 0
	err := forEachLine(path, func(_ int, raw []byte) error {
		var m selfplay.StepMetrics
		if err := decodeStrict(raw, &m); err != nil {
			return err
		}
		if m.Step < 0 {
			return fmt.Errorf("negative step %d", m.Step)
		}
		if _, ok := byStep[m.Step]; ok {
			replaced++
		}
		byStep[m.Step] = m
		return nil
	})
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: missing: a run folder needs the metrics that training writes", path)
		}
		return nil, err
	}
	if len(byStep) == 0 {
		return nil, fmt.Errorf("%s: no steps recorded (empty file)", path)
	}
	if replaced > 0 {
		log.Info().Str("file", path).Int("steps", replaced).Msg("steps logged twice (resumed run): keeping the later lines")
	}
	steps := make([]selfplay.StepMetrics, 0, len(byStep))
	for _, m := range byStep {
		steps = append(steps, m)
	}
	sort.Slice(steps, func(i, j int) bool { return steps[i].Step < steps[j].Step })
	return steps, nil
}

// readConfig returns config.json pretty-printed, or nil when the run has none.
func readConfig(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object: %w", path, err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, bytes.TrimSpace(raw), "", "  "); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out.Bytes(), nil
}

// ReadEvalRecords reads an eval.jsonl file, checking each record's arithmetic (counts, rate and
// interval must agree); records are returned sorted by step.
func ReadEvalRecords(path string) ([]EvalRecord, error) { return readEvals(path) }

// WriteEvalRecords writes records as eval.jsonl, atomically (temporary file, then rename).
func WriteEvalRecords(path string, recs []EvalRecord) error {
	var buf bytes.Buffer
	for i := range recs {
		if err := recs[i].Validate(); err != nil {
			return fmt.Errorf("%s: record %d: %w", path, i+1, err)
		}
		line, err := recs[i].MarshalLine()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		buf.Write(line)
	}
	return atomicfile.WriteFile(path, buf.Bytes())
}

func readEvals(path string) ([]EvalRecord, error) {
	var out []EvalRecord
	err := forEachLine(path, func(_ int, raw []byte) error {
		var r EvalRecord
		if err := decodeStrict(raw, &r); err != nil {
			return err
		}
		if err := r.Validate(); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Step < out[j].Step })
	return out, nil
}

// evalsFromMetrics collects the scheduled evaluations logged inside metrics.jsonl.
func evalsFromMetrics(steps []selfplay.StepMetrics) []EvalRecord {
	var out []EvalRecord
	for _, m := range steps {
		if m.EvalWinRate == nil {
			continue
		}
		r := EvalRecord{Step: m.Step, Games: m.EvalGames, WinRate: *m.EvalWinRate}
		r.Wins = int(r.WinRate*float64(r.Games) + 0.5)
		if m.EvalWinLow != nil && m.EvalWinHigh != nil {
			r.Low, r.High = *m.EvalWinLow, *m.EvalWinHigh
		} else {
			r.Low, r.High = Tally{Wins: r.Wins, Games: r.Games}.Interval()
		}
		out = append(out, r)
	}
	return out
}
