// Package train is the self-play training loop: play a step's games with the current adapters
// (llama.cpp), score them, recompute the trained samples' log-probs with the gradient engine,
// turn advantages into per-token loss weights (optim), backpropagate into the LoRA matrices, step
// AdamW, write the adapter and swap it into llama.cpp, and checkpoint. The loop is the same for
// every Game.
package train

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/rs/zerolog"

	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/lora"
	"github.com/vzlocal/vzlocal/optim"
	"github.com/vzlocal/vzlocal/selfplay"
)

// maxBadSteps non-finite steps in a row stop the run: something is wrong beyond one bad batch.
const maxBadSteps = 3

// Setup is what a Trainer is built from.
type Setup struct {
	Config Config
	RunDir string
	Game   Game
	Model  *llm.Model  // the rollout engine: one base model for every adapter
	Engine lora.Engine // the gradient engine on the same base GGUF
	Resume bool        // continue from RunDir's newest checkpoint
	Log    zerolog.Logger
	// OnStep, when set, sees every step's metrics (the CLI's live line).
	OnStep func(m selfplay.StepMetrics)
	// Evaluate, when set with Config.EvalEvery > 0, plays the scheduled evaluation of the
	// trained adapter (the first of Game.Adapters()) against the base model.
	Evaluate func(ctx context.Context, step int, candidate *llm.Adapter) (EvalResult, error)
}

// EvalResult is a scheduled evaluation's outcome, folded into the step's metrics.
type EvalResult struct {
	Games      int
	WinRate    float64
	Low, High  float64
	Transcript any // appended to eval.jsonl when not nil
}

// Trainer runs the loop. It is not safe for concurrent use.
type Trainer struct {
	Setup
	sched optim.Schedule
	pg    optim.PGConfig

	adapters  map[string]*trainedAdapter
	snapshots map[string]*frozenAdapter
	stale     bool   // a stage began: snapshots are retaken before the next step
	step      int    // completed steps
	badSteps  int    // non-finite steps in a row
	lastStage string // stage of the last completed step
	saved     int    // step of the newest checkpoint (-1: none this session)
	// dirty is set while a step has changed the adapter (or the game's state) but is not yet
	// counted and logged: a checkpoint taken then would save a half step, and a resumed run would
	// play that step again on the already-updated adapter. Cleared when the step is recorded.
	dirty bool

	metrics, games, evals *jsonlLog
}

// trainedAdapter is one adapter in its three forms: the float32 master copy the optimizer
// updates, llama.cpp's loaded copy that rollouts use, and its policy.
type trainedAdapter struct {
	name   string
	lora   *lora.Adapter
	llm    *llm.Adapter
	opt    *optim.AdamW
	policy *selfplay.LlamaPolicy
}

// frozenAdapter is a snapshot taken at a stage's start (a KL reference, V-Zero's "previous
// solver").
type frozenAdapter struct {
	lora   *lora.Adapter
	llm    *llm.Adapter
	policy *selfplay.LlamaPolicy
}

// New prepares a run folder (or reopens one to resume) and the adapters.
func New(s Setup) (*Trainer, error) {
	c := s.Config
	t := &Trainer{Setup: s, adapters: map[string]*trainedAdapter{}, snapshots: map[string]*frozenAdapter{}, stale: true, saved: -1}
	t.sched = optim.Schedule{Kind: optim.ScheduleKind(c.Optim.Schedule), PeakLR: c.Optim.LR, TotalSteps: c.Steps, WarmupFrac: c.Optim.Warmup}
	if err := t.sched.Validate(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	normLen := max(c.Spy.ClueMaxTokens, c.Spy.DecisionMaxTokens) // a step's samples may set less
	if c.Game == "qs" {
		normLen = c.QS.maxTokens()
	}
	if info := s.Model.Info(); info.MRoPE != s.Engine.Config().MRoPE() {
		return nil, fmt.Errorf("train: the rollout model (%s, M-RoPE %v) and the gradient engine's model (%s, M-RoPE %v) place image rows differently: give both the same GGUF",
			info.Arch, info.MRoPE, s.Engine.Config().Arch, s.Engine.Config().MRoPE())
	}
	pg, err := pgConfig(c.Loss, normLen)
	if err != nil {
		return nil, err
	}
	t.pg = pg
	if err := c.Switch.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(s.RunDir, adaptersDir), 0o755); err != nil {
		return nil, fmt.Errorf("train: run folder: %w", err)
	}

	var state *checkpointState
	var ckptDir string
	if s.Resume {
		saved, err := ReadConfig(s.RunDir)
		if err != nil {
			return nil, err
		}
		if d := resumableDiff(saved, c); len(d) > 0 {
			return nil, fmt.Errorf("train: cannot resume %s with another config:\n  %s", s.RunDir, joinLines(d))
		}
		dir, _, ok, err := LatestCheckpoint(s.RunDir)
		if err != nil {
			return nil, err
		}
		if ok {
			if state, err = readCheckpointState(dir); err != nil {
				return nil, err
			}
			ckptDir = dir
		}
		removeStaleTemps(s.RunDir)
	}
	if err := WriteConfig(s.RunDir, c); err != nil {
		return nil, err
	}
	var metricsAt, gamesAt, evalsAt int64
	if state != nil {
		metricsAt, gamesAt, evalsAt = state.MetricsSize, state.GamesSize, state.EvalSize
	}
	opened := false
	defer func() {
		if !opened { // a failed New leaves no open log file and no adapter loaded in llama.cpp
			t.release()
		}
	}()
	if t.metrics, err = openLog(filepath.Join(s.RunDir, MetricsFile), metricsAt); err != nil {
		return nil, err
	}
	if t.games, err = openLog(filepath.Join(s.RunDir, GamesFile), gamesAt); err != nil {
		return nil, err
	}
	if t.evals, err = openLog(filepath.Join(s.RunDir, EvalFile), evalsAt); err != nil {
		return nil, err
	}
	for i, name := range s.Game.Adapters() {
		if err := t.initAdapter(name, i, ckptDir); err != nil {
			return nil, err
		}
	}
	if state != nil {
		if err := t.restore(state, ckptDir); err != nil {
			return nil, err
		}
	}
	opened = true
	return t, nil
}

// release closes the logs and frees the adapters loaded into llama.cpp (of a New that failed).
func (t *Trainer) release() {
	for _, l := range []*jsonlLog{t.metrics, t.games, t.evals} {
		if l != nil {
			l.close()
		}
	}
	for _, a := range t.adapters {
		a.llm.Free()
	}
	for _, s := range t.snapshots {
		s.llm.Free()
	}
}

func (t *Trainer) initAdapter(name string, index int, ckptDir string) error {
	c := t.Config
	cfg := t.Engine.Config()
	var a *lora.Adapter
	var err error
	opt, err := optim.NewAdamW(optim.AdamWConfig{Beta1: c.Optim.Beta1, Beta2: c.Optim.Beta2, Eps: c.Optim.Eps, WeightDecay: c.Optim.WeightDecay})
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if ckptDir != "" {
		if a, err = lora.ReadAdapterGGUF(filepath.Join(ckptDir, name+".gguf"), cfg); err != nil {
			return fmt.Errorf("train: resume: %w", err)
		}
		b, err := os.ReadFile(filepath.Join(ckptDir, name+".adamw"))
		if err != nil {
			return fmt.Errorf("train: resume: %w", err)
		}
		if err := opt.UnmarshalBinary(b); err != nil {
			return fmt.Errorf("train: resume %s: optimizer state: %w", ckptDir, err)
		}
	} else {
		a, err = lora.NewAdapter(cfg, lora.AdapterOptions{
			Rank: c.LoRA.Rank, Alpha: float32(c.LoRA.Alpha), Targets: c.LoRA.Targets,
			Seed: uint64(c.Seed)*1000 + uint64(index),
		})
		if err != nil {
			return fmt.Errorf("train: adapter %s: %w", name, err)
		}
	}
	la, err := t.loadIntoRollout(name, a)
	if err != nil {
		return err
	}
	pol := selfplay.NewLlamaPolicy(t.Model, la, uint64(c.Seed))
	pol.TopK, pol.TopP = c.Spy.TopK, float32(c.Spy.TopP)
	t.adapters[name] = &trainedAdapter{name: name, lora: a, llm: la, opt: opt, policy: pol}
	return nil
}

// loadIntoRollout writes an adapter as F32 GGUF (bit-exact, so a resumed run samples exactly what
// the uninterrupted one did) and loads it into llama.cpp.
func (t *Trainer) loadIntoRollout(name string, a *lora.Adapter) (*llm.Adapter, error) {
	path := filepath.Join(t.RunDir, adaptersDir, name+".gguf")
	if err := a.WriteGGUF(path, lora.TypeF32); err != nil {
		return nil, fmt.Errorf("train: adapter %s: %w", name, err)
	}
	la, err := t.Model.LoadAdapter(path)
	if err != nil {
		return nil, fmt.Errorf("train: adapter %s: %w", name, err)
	}
	return la, nil
}

// Step is the number of completed optimizer steps.
func (t *Trainer) Step() int { return t.step }

// workspaceReleaser is a gradient engine whose working memory lives on the GPU that llama.cpp's
// rollouts share (cuda.Engine).
type workspaceReleaser interface{ ReleaseWorkspace() error }

// releaseWorkspace gives the engine's working memory back after an update, so that the rollouts
// and evaluations that follow can grow into it: the next update takes what is free again.
func (t *Trainer) releaseWorkspace() error {
	if r, ok := t.Engine.(workspaceReleaser); ok {
		if err := r.ReleaseWorkspace(); err != nil {
			return fmt.Errorf("release the gradient engine's workspace: %w", err)
		}
	}
	return nil
}

// Run trains until Config.Steps steps are done or ctx is cancelled; either way it leaves a
// checkpoint of the last completed step. A step interrupted half-way is dropped whole.
func (t *Trainer) Run(ctx context.Context) (err error) {
	defer func() {
		if t.dirty {
			// A step failed after its update: the newest checkpoint on disk is the last whole
			// state; a resume truncates the logs back to it and plays the lost steps again.
			t.Log.Error().Int("step", t.step+1).Int("checkpoint", t.saved).
				Msg("the step failed after its update: no checkpoint of this half step is written")
		} else if cerr := t.checkpoint(); cerr != nil && err == nil {
			err = cerr
		}
		t.metrics.close()
		t.games.close()
		t.evals.close()
	}()
	for t.step < t.Config.Steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := t.runStep(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if t.Config.CheckpointEvery > 0 && t.step%t.Config.CheckpointEvery == 0 {
			if err := t.checkpoint(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *Trainer) runStep(ctx context.Context) error {
	step := t.step
	plan := t.Game.Plan()
	train, ok := t.adapters[plan.Train]
	if !ok {
		return fmt.Errorf("train: game plans adapter %q it did not declare", plan.Train)
	}
	if err := t.takeSnapshots(plan); err != nil {
		return err
	}
	policies := map[string]selfplay.Policy{}
	for name, a := range t.adapters {
		a.policy.Reseed(stepSeed(t.Config.Seed, step, name))
		policies[name] = a.policy
	}
	for name, s := range t.snapshots {
		s.policy.Reseed(stepSeed(t.Config.Seed, step, name))
		policies[name] = s.policy
	}

	m := selfplay.StepMetrics{Step: step}
	start := time.Now()
	res, err := t.Game.Play(ctx, step, policies)
	if err != nil {
		return fmt.Errorf("train: step %d: play: %w", step, err)
	}
	m.RolloutSeconds = time.Since(start).Seconds()
	if m.RolloutSeconds > 0 {
		m.RolloutTokPerSec = float64(res.RolloutTokens) / m.RolloutSeconds
	}

	upd, err := t.update(ctx, step, plan, train, res, &m)
	if rerr := t.releaseWorkspace(); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("train: step %d: %w", step, err)
	}
	var stop error // set when this step is the last non-finite one tolerated; logged first
	if upd.skipped {
		t.badSteps++
		t.Log.Warn().Int("step", step+1).Float64("loss", m.Loss).Float64("grad_norm", m.GradNorm).
			Msg("non-finite loss or gradient: step skipped, adapter unchanged")
		if t.badSteps >= maxBadSteps {
			stop = fmt.Errorf("train: %d steps in a row had a non-finite loss or gradient (last: step %d); "+
				"the adapter of step %d is kept. Lower --lr or check the model", t.badSteps, step+1, step+1-t.badSteps)
		}
	} else {
		t.badSteps = 0
	}

	gm := res.Metrics
	m.Phase, m.RewardMean, m.RewardStd, m.FracZeroStd = plan.Stage, gm.RewardMean, gm.RewardStd, gm.FracZeroStd
	m.DecisionAccuracy, m.AbstainRate, m.InvalidRate, m.SpyWinRate = gm.DecisionAccuracy, gm.AbstainRate, gm.InvalidRate, gm.SpyWinRate
	m.BaselineSpy, m.BaselineCiv = gm.BaselineSpy, gm.BaselineCiv
	t.dirty = true // the game's state moves now
	switched := t.Game.EndStep(step, res)
	m.AccEMA, m.AbstainEMA = res.Metrics.AccEMA, res.Metrics.AbstainEMA
	m.PhaseSwitched = step > 0 && plan.Stage != t.lastStage
	if switched {
		t.stale = true
	}

	var evalErr error // the step is trained: it is recorded even when its evaluation fails
	if t.Evaluate != nil && t.Config.EvalEvery > 0 && (step+1)%t.Config.EvalEvery == 0 {
		ev, err := t.Evaluate(ctx, step, t.primary().llm)
		if err != nil {
			evalErr = fmt.Errorf("train: step %d: evaluation: %w", step+1, err)
			t.Log.Warn().Int("step", step+1).Err(err).Msg("evaluation failed; the trained step is kept without it")
		} else {
			m.EvalGames = ev.Games
			m.EvalWinRate, m.EvalWinLow, m.EvalWinHigh = &ev.WinRate, &ev.Low, &ev.High
			if ev.Transcript != nil {
				if err := t.evals.append(ev.Transcript); err != nil {
					return err
				}
			}
		}
	}

	m.Time = time.Now().UTC().Format(time.RFC3339)
	m.PeakMemBytes = peakRSS()
	for _, tr := range res.Transcripts {
		if err := t.games.append(tr); err != nil {
			return err
		}
	}
	finiteFields(&m)
	if err := t.metrics.append(m); err != nil {
		return err
	}
	t.lastStage = plan.Stage
	t.step++
	t.dirty = false
	if t.OnStep != nil {
		t.OnStep(m)
	}
	if evalErr != nil {
		return evalErr
	}
	return stop
}

// finiteFields zeroes the float fields JSON cannot hold (NaN, ±Inf): they occur only on a step
// that is already flagged Skipped, whose log line must still be written.
func finiteFields(m *selfplay.StepMetrics) {
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Float64 && (math.IsNaN(f.Float()) || math.IsInf(f.Float(), 0)) {
			f.SetFloat(0)
		}
	}
}
