package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"

	"github.com/rs/zerolog/log"

	"github.com/vzlocal/vzlocal/data"
	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/report"
	"github.com/vzlocal/vzlocal/selfplay"
	"github.com/vzlocal/vzlocal/selfplay/train"
)

// evalCmd is `vzlocal eval`: the win rate of a trained adapter against the base model (or another
// adapter) in mixed "Who is the Spy" games on held-out pairs.
type evalCmd struct {
	Candidate string `arg:"" name:"RUNDIR|ADAPTER" help:"Training run folder (its adapter.gguf and config.json) or a llama.cpp LoRA GGUF." type:"existingpath"`
	Against   string `help:"Reference: base (the model without adapter), or an adapter GGUF or run folder." default:"base" placeholder:"base|ADAPTER2"`
	Games     int    `help:"Games to play; even: half with the candidate as the spy, half as the civilians." default:"100"`

	Model   string   `help:"Base text model GGUF (default: \"model\" of RUNDIR/config.json)." type:"path" placeholder:"M.gguf"`
	Mmproj  string   `help:"Vision projector GGUF (default: \"mmproj\" of RUNDIR/config.json)." type:"path" placeholder:"P.gguf"`
	Images  string   `help:"Pair folder or folder of plain images (default: the run's pairs)." type:"path"`
	HeldOut *float64 `help:"Fraction of pairs held out from training; only those are played (default: the run's, else 0.1)."`
	Seed    *int64   `help:"Seed of the held-out split, the spies and the sampling (default: the run's, else 1)."`

	Decision    string `help:"Who identifies the spy: vote (the civilians vote: the candidate's votes decide its civilian games) or observer (the reference always judges, a fixed yardstick)." default:"vote" enum:"vote,observer"`
	Samples     int    `help:"Observer samples per game in --decision observer (default: the run's, else 8)."`
	Batch       int    `help:"Games played together." default:"8"`
	Threads     int    `help:"CPU threads for llama.cpp (0: all cores)."`
	Out         string `help:"Add the result to this eval.jsonl (the format vzlocal report plots)." type:"path" placeholder:"FILE.jsonl"`
	Step        int    `help:"Training step to file the --out record under." default:"0"`
	Transcripts string `help:"Write every game (games.jsonl format; even games have the candidate as the spy)." type:"path" placeholder:"FILE.jsonl"`
}

func (c *evalCmd) Run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if c.Games%2 != 0 {
		return fmt.Errorf("vzlocal eval: --games %d is odd: half the games have the candidate as the spy and half as the civilians, so give an even number (%d or %d)", c.Games, c.Games-1, c.Games+1)
	}
	// Both adapters must exist before minutes go into pairs and the model.
	for _, side := range []string{c.Candidate, c.Against} {
		if side == selfplay.SpyEvalBase {
			continue
		}
		if _, err := selfplay.SpyEvalAdapterFile(side); err != nil {
			return err
		}
	}
	run, err := c.runConfig()
	if err != nil {
		return err
	}
	if c.Model == "" || c.Mmproj == "" {
		return fmt.Errorf("vzlocal eval: which base model? pass --model M.gguf and --mmproj P.gguf (or a run folder whose config.json names them)")
	}
	pairs, err := c.pairs(run)
	if err != nil {
		return err
	}
	cfg, err := c.evalConfig(run, pairs)
	if err != nil {
		return err
	}
	ev, err := selfplay.NewSpyEvaluator(cfg)
	if err != nil {
		return err
	}
	threads := c.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	s := cfg.Settings
	maxTokens := max(s.Clue.MaxTokens, s.Decide.MaxTokens)
	m, err := llm.Load(c.Model, c.Mmproj, llm.Options{
		Threads: threads, Seed: uint64(s.Seed),
		ContextSize: max(4096, 1024+max(s.ObserverSamples, 1)*maxTokens),
		Parallel:    max(s.ObserverSamples, 1),
	})
	if err != nil {
		return err
	}
	defer m.Close()
	cand, err := selfplay.LoadSpyEvalAdapter(m, c.Candidate)
	if err != nil {
		return err
	}
	ref, err := selfplay.LoadSpyEvalAdapter(m, c.Against)
	if err != nil {
		return err
	}
	log.Info().Str("candidate", c.Candidate).Str("reference", c.Against).Int("games", c.Games).
		Int("held_out_pairs", len(ev.HeldOut())).Str("decision", s.Decision).Msg("evaluating")
	res, err := ev.RunLlama(ctx, m, cand, ref)
	if err != nil {
		return err
	}
	if c.Transcripts != "" {
		if err := selfplay.WriteSpyGames(c.Transcripts, res.Games); err != nil {
			return err
		}
		log.Info().Str("file", c.Transcripts).Msg("games written")
	}
	rec := spyEvalRecord(res, c.Step)
	if c.Out != "" {
		if err := appendEvalRecord(c.Out, rec); err != nil {
			return err
		}
		log.Info().Str("file", c.Out).Int("step", c.Step).Msg("eval record written")
	}
	fmt.Print(res.Summary(sideName(c.Candidate), sideName(c.Against), evalInterval))
	return nil
}

// runConfig reads RUNDIR/config.json when the candidate is a run folder and fills the flags the
// user left out from it. An adapter file has no run: the flags must say everything.
func (c *evalCmd) runConfig() (*train.Config, error) {
	st, err := os.Stat(c.Candidate)
	if err != nil {
		return nil, fmt.Errorf("vzlocal eval: %w", err)
	}
	if !st.IsDir() {
		return nil, nil
	}
	path := filepath.Join(c.Candidate, train.ConfigFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if c.Model == "" || c.Mmproj == "" || c.Images == "" {
			return nil, fmt.Errorf("vzlocal eval: run folder %s has no %s; pass --model, --mmproj and --images", c.Candidate, train.ConfigFile)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vzlocal eval: %w", err)
	}
	var cfg train.Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("vzlocal eval: %s: not a run config: %w", path, err)
	}
	if c.Model == "" {
		c.Model = runFile(c.Candidate, cfg.Model)
	}
	if c.Mmproj == "" {
		c.Mmproj = runFile(c.Candidate, cfg.MMProj)
	}
	return &cfg, nil
}

// runFile resolves a path of config.json: as written when it exists, else relative to the run
// folder (a run moved together with its model files).
func runFile(runDir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return filepath.Join(runDir, p)
}

// pairs are the run's pairs (or --images): all of them; the evaluator keeps the held-out ones.
func (c *evalCmd) pairs(run *train.Config) ([]*data.Pair, error) {
	seed := c.seed(run)
	switch {
	case c.Images != "":
		return selfplay.LoadSpyPairs(c.Images, c.workDir(), seed)
	case run != nil && run.Data == "clevr":
		// The trainer generated its pairs inside the run folder.
		dir := filepath.Join(c.Candidate, "data")
		pairs, err := data.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("vzlocal eval: the run's generated pairs: %w", err)
		}
		return pairs, nil
	case run != nil && run.Images != "":
		// Plain images were made into pairs under the run folder; the same seed makes the same
		// pairs (and IDs) again, so the held-out split is the training run's.
		return selfplay.LoadSpyPairs(runFile(c.Candidate, run.Images), c.Candidate, seed)
	}
	return nil, errors.New("vzlocal eval: which pairs? pass --images DIR (a run folder's config.json names them)")
}

// workDir is where pairs made from plain images go: the run folder, else next to the adapter.
func (c *evalCmd) workDir() string {
	if st, err := os.Stat(c.Candidate); err == nil && st.IsDir() {
		return c.Candidate
	}
	return filepath.Dir(c.Candidate)
}

func (c *evalCmd) seed(run *train.Config) int64 {
	switch {
	case c.Seed != nil:
		return *c.Seed
	case run != nil:
		return run.Seed
	}
	return 1
}

// evalConfig is the game of the run (players, rounds, spy image, sampling) with the evaluation's
// decision mode, on the run's held-out split; flags override the run.
func (c *evalCmd) evalConfig(run *train.Config, pairs []*data.Pair) (selfplay.SpyEvalConfig, error) {
	cfg, err := runSpyEvalConfig(run, pairs, c.Games, c.Decision, c.workDir())
	if err != nil {
		return cfg, err
	}
	if c.HeldOut != nil {
		cfg.HeldOut = *c.HeldOut
	}
	if c.Samples > 0 {
		cfg.Settings.ObserverSamples = c.Samples
	}
	cfg.Settings.Seed = c.seed(run)
	cfg.SplitSeed, cfg.Batch = cfg.Settings.Seed, c.Batch
	return cfg, nil
}

// runSpyEvalConfig is an evaluation of games games with the run's game settings (defaults when
// run is nil: held-out fraction 0.1, seed 1).
func runSpyEvalConfig(run *train.Config, pairs []*data.Pair, games int, decision, workDir string) (selfplay.SpyEvalConfig, error) {
	s := selfplay.DefaultSpySettings()
	cfg := selfplay.SpyEvalConfig{Pairs: pairs, HeldOut: 0.1, Games: games, SplitSeed: 1}
	s.Seed = 1
	prompts := ""
	if run != nil {
		sc := run.Spy
		s.Players, s.Rounds, s.SpyImage, s.ObserverSamples = sc.Players, sc.Rounds, sc.SpyImage, sc.ObserverSamples
		s.Clue = selfplay.StageSampling{Temperature: sc.Temperature, MaxTokens: sc.ClueMaxTokens}
		s.Decide = selfplay.StageSampling{Temperature: sc.Temperature, MaxTokens: sc.DecisionMaxTokens}
		cfg.TopK, cfg.TopP = sc.TopK, float32(sc.TopP)
		if cfg.TopP >= 1 {
			cfg.TopP = 0 // 1 is "off" in the run's config
		}
		prompts = sc.Prompts
		cfg.HeldOut, cfg.SplitSeed, s.Seed = run.HeldOut, run.Seed, run.Seed
	}
	s.Decision = decision
	s.BlankDir = filepath.Join(workDir, "blank")
	p, err := selfplay.LoadSpyPrompts(prompts)
	if err != nil {
		return cfg, err
	}
	cfg.Settings, cfg.Prompts = s, p
	return cfg, nil
}

// scheduledSpyEval is the trainer's evaluation every --eval-every steps (train.Setup.Evaluate):
// --eval-games games of the training adapter against the base model, civilians voting, on the
// run's held-out pairs with fixed seeds, so successive evaluations are comparable. nil when the
// run does not evaluate.
func scheduledSpyEval(cfg train.Config, runDir string, run *train.Run) (func(context.Context, int, *llm.Adapter) (train.EvalResult, error), error) {
	if cfg.EvalEvery <= 0 {
		return nil, nil
	}
	if cfg.Game != "" && cfg.Game != "spy" {
		return nil, fmt.Errorf("train: --eval-every: scheduled evaluation plays the spy game, not --game %s", cfg.Game)
	}
	if cfg.EvalGames%2 != 0 {
		return nil, fmt.Errorf("train: --eval-games %d is odd: half the games have the candidate as the spy and half as the civilians", cfg.EvalGames)
	}
	ec, err := runSpyEvalConfig(&cfg, run.HeldOut, cfg.EvalGames, selfplay.DecisionVote, runDir)
	if err != nil {
		return nil, err
	}
	ev, err := selfplay.NewSpyEvaluator(ec)
	if err != nil {
		return nil, fmt.Errorf("train: --eval-every: %w", err)
	}
	return spyEvalHook(ev, run.Model), nil
}

// evalInterval is the Wilson 95% interval of package report.
func evalInterval(wins, games int) (float64, float64) {
	return report.Tally{Wins: wins, Games: games}.Interval()
}

// spyEvalRecord is the eval.jsonl line of a result: overall and per-side win rates with intervals.
func spyEvalRecord(res *selfplay.SpyEvalResult, step int) report.EvalRecord {
	var w report.WinTally
	res.Tally(w.Add)
	return w.Record(step)
}

// appendEvalRecord adds rec to an eval.jsonl file (rewritten atomically; created if missing).
func appendEvalRecord(path string, rec report.EvalRecord) error {
	var recs []report.EvalRecord
	if _, err := os.Stat(path); err == nil {
		if recs, err = report.ReadEvalRecords(path); err != nil {
			return fmt.Errorf("vzlocal eval --out: %w", err)
		}
	}
	return report.WriteEvalRecords(path, append(recs, rec))
}

func sideName(s string) string {
	if s == selfplay.SpyEvalBase {
		return s
	}
	return filepath.Base(filepath.Clean(s))
}

// spyEvalHook is the trainer's scheduled evaluation (train.Setup.Evaluate): the training adapter
// against the base model on the evaluator's fixed games, recorded in eval.jsonl.
func spyEvalHook(ev *selfplay.SpyEvaluator, m *llm.Model) func(ctx context.Context, step int, cand *llm.Adapter) (train.EvalResult, error) {
	return func(ctx context.Context, step int, cand *llm.Adapter) (train.EvalResult, error) {
		res, err := ev.RunLlama(ctx, m, cand, nil)
		if err != nil {
			return train.EvalResult{}, err
		}
		rec := spyEvalRecord(res, step)
		log.Info().Int("step", step).Float64("win_rate", rec.WinRate).Float64("low", rec.Low).Float64("high", rec.High).
			Float64("decision_accuracy", res.Candidate.Accuracy()).Msg("evaluation against the base")
		return train.EvalResult{Games: rec.Games, WinRate: rec.WinRate, Low: rec.Low, High: rec.High, Transcript: rec}, nil
	}
}
