package report

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vzlocal/vzlocal/selfplay"
)

// syntheticRun describes a fake training run written by writeSyntheticRun.
type syntheticRun struct {
	steps     int
	seed      uint64
	lr        float64
	evalEvery int
	// evalInMetrics logs evaluations as Eval* fields of metrics.jsonl instead of eval.jsonl.
	evalInMetrics bool
	games         int
	// spyRecords writes games.jsonl with selfplay's own writer (selfplay.SpyGame lines) instead
	// of a generic record shape.
	spyRecords bool
}

// writeSyntheticRun writes a run folder that looks like a spy-game training run: decision and clue
// phases switched by a hysteresis rule on the accuracy EMA, a reward that improves, evaluations
// every few steps, a config, and games with images.
func writeSyntheticRun(t *testing.T, dir string, s syntheticRun) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	rng := rand.New(rand.NewPCG(s.seed, 7))
	start := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	phase, sinceSwitch := "decision", 0
	accEMA, naEMA, level := 0.3, 0.3, 0.3
	var metrics, evals []byte
	for step := 1; step <= s.steps; step++ {
		progress := float64(step) / float64(s.steps)
		// Decision steps make the observer better; clue steps make the clues harder.
		if phase == "decision" {
			level += 0.06
		} else {
			level -= 0.05
		}
		level = math.Max(0.1, math.Min(0.95, level))
		acc := math.Max(0, math.Min(1, level+0.08*rng.NormFloat64()))
		na := math.Max(0, 0.35-0.3*level+0.04*rng.NormFloat64())
		accEMA = 0.8*accEMA + 0.2*acc
		naEMA = 0.8*naEMA + 0.2*na
		switched := false
		sinceSwitch++
		if sinceSwitch >= 5 {
			if phase == "decision" && accEMA >= 0.7 && naEMA <= 0.2 {
				phase, switched, sinceSwitch = "clue", true, 0
			} else if phase == "clue" && (1-accEMA >= 0.4 || naEMA >= 0.3) {
				phase, switched, sinceSwitch = "decision", true, 0
			}
		}
		reward := -0.5 + 2*acc + 0.1*rng.NormFloat64()
		if phase == "clue" {
			reward = 0.05 * rng.NormFloat64()
		}
		m := selfplay.StepMetrics{
			Step: step, Phase: phase, Time: start.Add(time.Duration(step) * 37 * time.Second).Format(time.RFC3339),
			PhaseSwitched: switched, RewardMean: reward, RewardStd: 0.5, FracZeroStd: 0.2,
			DecisionAccuracy: acc, AbstainRate: na, AccEMA: accEMA, AbstainEMA: naEMA,
			KL:           0.002 * float64(step) * (1 + 0.1*rng.NormFloat64()),
			LogRatioMean: 0.012 + 0.002*rng.Float64(), LogRatioP99: 0.09 + 0.02*rng.Float64(),
			CompletionLenMean: 80 + 60*progress + 5*rng.NormFloat64(), CompletionLenMax: 200 + int(100*progress),
			RolloutTokPerSec: 900 + 50*rng.NormFloat64(), TrainTokPerSec: 2500 + 100*rng.NormFloat64(),
			LR: s.lr, PeakMemBytes: 5 << 30,
			RolloutSeconds: 20 + 2*rng.Float64(), ScoreSeconds: 0.5, TrainSeconds: 12 + rng.Float64(),
			OptimSeconds: 0.2, SwapSeconds: 0.8,
		}
		if s.evalEvery > 0 && step%s.evalEvery == 0 {
			var w WinTally
			p := 0.5 + 0.2*progress
			for g := 0; g < 40; g++ {
				role := "spy"
				if g%2 == 1 {
					role = "civilian"
				}
				w.Add(role, rng.Float64() < p)
			}
			rec := w.Record(step)
			if s.evalInMetrics {
				m.EvalWinRate, m.EvalWinLow, m.EvalWinHigh, m.EvalGames = &rec.WinRate, &rec.Low, &rec.High, rec.Games
			} else {
				line, err := rec.MarshalLine()
				require.NoError(t, err)
				evals = append(evals, line...)
			}
		}
		line, err := json.Marshal(m)
		require.NoError(t, err)
		metrics = append(append(metrics, line...), '\n')
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, MetricsFile), metrics, 0o644))
	if evals != nil {
		require.NoError(t, os.WriteFile(filepath.Join(dir, EvalFile), evals, 0o644))
	}
	cfg := map[string]any{"model": "tiny.gguf", "lr": s.lr, "lora": map[string]any{"rank": 16, "alpha": 32},
		"game": map[string]any{"players": 4, "rounds": 2, "group": 8}}
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ConfigFile), b, 0o644))
	if s.spyRecords {
		writeSyntheticSpyGames(t, dir, s.games, rng)
	} else {
		writeSyntheticGames(t, dir, s.games, rng)
	}
}

// writeSyntheticSpyGames writes games as selfplay records: 4 players, 2 rounds, 4 observer samples.
func writeSyntheticSpyGames(t *testing.T, dir string, n int, rng *rand.Rand) {
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "pairs"), 0o755))
	var games []*selfplay.SpyGame
	for id := 0; id < n; id++ {
		orig := filepath.Join(dir, "pairs", fmt.Sprintf("%03d_a.png", id))
		mod := filepath.Join(dir, "pairs", fmt.Sprintf("%03d_b.png", id))
		writeTestPNG(t, orig, color.RGBA{200, 40, 40, 255})
		writeTestPNG(t, mod, color.RGBA{40, 40, 200, 255})
		g := &selfplay.SpyGame{ID: id, PairID: fmt.Sprintf("clevr-%03d", id), Original: orig, Modified: mod, SpyImage: mod,
			Players: 4, Rounds: 2, Decision: "observer", Spy: 1 + rng.IntN(4)}
		for round := 1; round <= 2; round++ {
			for p := 1; p <= 4; p++ {
				role := "civilian"
				if p == g.Spy {
					role = "spy"
				}
				g.Samples = append(g.Samples, &selfplay.SpySample{Game: id, Stage: selfplay.StageClue, Round: round, Player: p, Role: role,
					Reasoning: "Two cubes and a sphere; I describe the sphere.", Clue: fmt.Sprintf("Player %d: a metal sphere on the left.", p),
					ClueOK: true, FormatOK: true, Reward: 0.04, Advantage: 0.03})
			}
		}
		votes := []selfplay.SpyVote{{Kind: selfplay.VotePlayer, Player: g.Spy}, {Kind: selfplay.VoteAbstain},
			{Kind: selfplay.VotePlayer, Player: 1 + (g.Spy % 4)}, {Kind: selfplay.VoteInvalid}}
		for k := range votes {
			g.Samples = append(g.Samples, &selfplay.SpySample{Game: id, Stage: selfplay.StageDecision, Role: "observer", Index: k,
				Reasoning: "Player clues disagree about the colour.", Vote: &votes[k], FormatOK: true, Reward: 2.49, Advantage: 1.2})
		}
		g.Scored, g.Tally, g.Accused, g.SpyCaught = true, []int{1, 0, 0, 0}, 1, g.Spy == 1
		games = append(games, g)
	}
	require.NoError(t, selfplay.WriteSpyGames(filepath.Join(dir, GamesFile), games))
}

func writeSyntheticGames(t *testing.T, dir string, n int, rng *rand.Rand) {
	if n == 0 {
		return
	}
	imgDir := filepath.Join(dir, "pairs")
	require.NoError(t, os.MkdirAll(imgDir, 0o755))
	var out []byte
	for g := 0; g < n; g++ {
		orig := fmt.Sprintf("pairs/%03d_a.png", g)
		mod := fmt.Sprintf("pairs/%03d_b.png", g)
		writeTestPNG(t, filepath.Join(dir, orig), color.RGBA{200, 40, 40, 255})
		writeTestPNG(t, filepath.Join(dir, mod), color.RGBA{40, 40, 200, 255})
		spy := 1 + rng.IntN(4)
		var clues []map[string]any
		for round := 1; round <= 2; round++ {
			for p := 1; p <= 4; p++ {
				clues = append(clues, map[string]any{"round": round, "player": p,
					"clue":      fmt.Sprintf("There is a %s object near the centre.", []string{"red", "shiny", "small", "large"}[p-1]),
					"reasoning": "I see several objects; I should describe one without giving away too much."})
			}
		}
		votes := []any{spy, spy, "N/A", 1 + rng.IntN(4), spy, "invalid", spy, 2}
		rec := map[string]any{"step": 1 + g*3, "spy": spy, "pair": map[string]any{"original": orig, "modified": mod},
			"clues": clues, "votes": votes, "winner": "civilians"}
		b, err := json.Marshal(rec)
		require.NoError(t, err)
		out = append(append(out, b...), '\n')
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, GamesFile), out, 0o644))
}

func writeTestPNG(t *testing.T, path string, c color.Color) {
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for y := 0; y < 48; y++ {
		for x := 0; x < 64; x++ {
			if (x-32)*(x-32)+(y-24)*(y-24) < 200 {
				img.Set(x, y, c)
			} else {
				img.Set(x, y, color.Gray{Y: 220})
			}
		}
	}
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, png.Encode(f, img))
	require.NoError(t, f.Close())
}
