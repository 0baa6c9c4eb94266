package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	goodStep1 = `{"step":1,"phase":"decision","reward_mean":0.5}`
	goodStep2 = `{"step":2,"phase":"clue","phase_switched":true,"reward_mean":0.1}`
)

func TestLoadRunBadInput(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string // name -> content; a missing metrics.jsonl is a test case
		wantErr string            // substring; the file (and line) must be named
	}{
		{"missing metrics", map[string]string{ConfigFile: `{}`}, "metrics.jsonl: missing"},
		{"empty metrics", map[string]string{MetricsFile: ""}, "metrics.jsonl: no steps recorded"},
		{"blank lines only", map[string]string{MetricsFile: "\n  \n\n"}, "metrics.jsonl: no steps recorded"},
		{"malformed line", map[string]string{MetricsFile: goodStep1 + "\n{\"step\":2,\n" + goodStep2 + "\n"}, "metrics.jsonl:2: invalid JSON"},
		{"not an object", map[string]string{MetricsFile: goodStep1 + "\n[1,2]\n"}, "metrics.jsonl:2: not a JSON object"},
		{"wrong type", map[string]string{MetricsFile: goodStep1 + "\n\n" + `{"step":"two"}` + "\n"}, `metrics.jsonl:3: field "step": got a JSON string, want int`},
		{"negative step", map[string]string{MetricsFile: `{"step":-4}` + "\n"}, "metrics.jsonl:1: negative step -4"},
		{"config not an object", map[string]string{MetricsFile: goodStep1 + "\n", ConfigFile: `[1]`}, "config.json: not a JSON object"},
		{"eval malformed", map[string]string{MetricsFile: goodStep1 + "\n", EvalFile: `{"step":1,"games":10,"wins":7}` + "\n" + `{"step":2,"games":10,"wins":12}` + "\n"}, "eval.jsonl:2: step 2: 12 wins out of 10 games"},
		{"games malformed", map[string]string{MetricsFile: goodStep1 + "\n", GamesFile: "{}\nnot json\n{}\n"}, "games.jsonl:2: not a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
			}
			_, err := LoadRun(dir, LoadOptions{SampleGames: 3})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.Contains(t, err.Error(), dir, "the error names the file")
			// The whole report fails the same way, before writing anything.
			out := filepath.Join(t.TempDir(), "out")
			_, err = Write([]string{dir}, Options{OutDir: out})
			require.Error(t, err)
			assert.NoDirExists(t, out)
		})
	}
}

func TestLoadRunNotAFolder(t *testing.T) {
	f := filepath.Join(t.TempDir(), "metrics.jsonl")
	require.NoError(t, os.WriteFile(f, []byte(goodStep1+"\n"), 0o644))
	_, err := LoadRun(f, LoadOptions{})
	require.ErrorContains(t, err, "is not a folder")
}

func TestLoadRunTolerance(t *testing.T) {
	tests := []struct {
		name      string
		metrics   string
		wantSteps []int
		wantPhase []string
	}{
		// A run being written (or killed mid-write) ends in half a line with no newline.
		{"truncated last line", goodStep1 + "\n" + goodStep2 + "\n" + `{"step":3,"pha`, []int{1, 2}, []string{"decision", "clue"}},
		// A resumed run logs again the steps after its checkpoint: the later line wins.
		{"resumed run", goodStep1 + "\n" + goodStep2 + "\n" + `{"step":2,"phase":"decision"}` + "\n", []int{1, 2}, []string{"decision", "decision"}},
		{"out of order", goodStep2 + "\n" + goodStep1, []int{1, 2}, []string{"decision", "clue"}},
		{"crlf and blank lines", goodStep1 + "\r\n\r\n" + goodStep2 + "\r\n", []int{1, 2}, []string{"decision", "clue"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, MetricsFile), []byte(tc.metrics), 0o644))
			run, err := LoadRun(dir, LoadOptions{})
			require.NoError(t, err)
			var steps []int
			var phases []string
			for _, m := range run.Steps {
				steps = append(steps, m.Step)
				phases = append(phases, m.Phase)
			}
			assert.Equal(t, tc.wantSteps, steps)
			assert.Equal(t, tc.wantPhase, phases)
			assert.Nil(t, run.Config)
			assert.Empty(t, run.Evals)
		})
	}
}

func TestLoadRunLongLine(t *testing.T) {
	// A game transcript line far longer than the reader's buffer.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, MetricsFile), []byte(goodStep1+"\n"), 0o644))
	long := `{"spy":2,"clues":[{"player":1,"clue":"c","reasoning":"` + strings.Repeat("x", 300_000) + `"}]}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, GamesFile), []byte(long+"\n{}\n"), 0o644))
	run, err := LoadRun(dir, LoadOptions{SampleGames: 5})
	require.NoError(t, err)
	assert.Equal(t, 2, run.Games.Total)
	require.Len(t, run.Games.Games, 2)
	require.Len(t, run.Games.Games[0].Clues, 1)
	assert.Len(t, []rune(run.Games.Games[0].Clues[0].Reasoning), maxReasoning+2, "reasoning is cut for the page")
}

func TestEvalsFromMetrics(t *testing.T) {
	dir := t.TempDir()
	lines := goodStep1 + "\n" +
		`{"step":10,"phase":"clue","eval_win_rate":0.7,"eval_win_low":0.3968,"eval_win_high":0.8922,"eval_games":10}` + "\n" +
		`{"step":20,"phase":"clue","eval_win_rate":0.5,"eval_games":100}` + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, MetricsFile), []byte(lines), 0o644))
	run, err := LoadRun(dir, LoadOptions{})
	require.NoError(t, err)
	assert.Equal(t, MetricsFile, run.EvalSource)
	require.Len(t, run.Evals, 2)
	assert.Equal(t, EvalRecord{Step: 10, Games: 10, Wins: 7, WinRate: 0.7, Low: 0.3968, High: 0.8922}, run.Evals[0])
	// No interval logged: computed from the counts.
	assert.Equal(t, 50, run.Evals[1].Wins)
	assert.InDelta(t, 0.4038, run.Evals[1].Low, 5e-5)
	assert.InDelta(t, 0.5962, run.Evals[1].High, 5e-5)

	// An empty eval.jsonl (evaluation not run yet) leaves the metrics' evaluations.
	require.NoError(t, os.WriteFile(filepath.Join(dir, EvalFile), nil, 0o644))
	run, err = LoadRun(dir, LoadOptions{})
	require.NoError(t, err)
	assert.Equal(t, MetricsFile, run.EvalSource)
	assert.Len(t, run.Evals, 2)

	// eval.jsonl, when it holds records, is preferred.
	require.NoError(t, os.WriteFile(filepath.Join(dir, EvalFile), []byte(`{"step":30,"games":10,"wins":0}`+"\n"), 0o644))
	run, err = LoadRun(dir, LoadOptions{})
	require.NoError(t, err)
	assert.Equal(t, EvalFile, run.EvalSource)
	require.Len(t, run.Evals, 1)
	assert.InDelta(t, 0.2775, run.Evals[0].High, 5e-5)
}
