package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/rs/zerolog/log"
	"golang.org/x/term"

	"github.com/vzlocal/vzlocal/internal/atomicfile"
	"github.com/vzlocal/vzlocal/selfplay"
	"github.com/vzlocal/vzlocal/selfplay/train"
)

// flagsFile holds a run's settings by flag name, so `--resume RUNDIR` can fill every flag not
// given on the command line with the run's own value.
const flagsFile = "flags.json"

// trainCmd trains a LoRA adapter by self-play.
type trainCmd struct {
	ConfigFile configFile `name:"config" help:"YAML or JSON file of settings (keys are flag names; flags given here override it)." placeholder:"FILE"`
	Resume     resumeFlag `help:"Continue the run in RUNDIR from its newest checkpoint (settings from the run; --steps may be raised)." placeholder:"RUNDIR"`
	Out        string     `help:"Run folder: config, metrics.jsonl, games.jsonl, checkpoints, adapter.gguf." default:"run" type:"path"`

	Settings train.Config `embed:""`
}

func (c *trainCmd) Run(kctx *kong.Context) error {
	if err := checkTrainGameFlags(kctx, c.Settings.Game); err != nil {
		return err
	}
	runDir := c.Out
	resume := string(c.Resume) != ""
	if resume {
		runDir = string(c.Resume)
	} else if _, _, ok, _ := train.LatestCheckpoint(runDir); ok {
		return fmt.Errorf("run folder %s already has checkpoints: resume it with --resume %s, or choose another --out", runDir, runDir)
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return fmt.Errorf("run folder: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	run, err := train.Open(c.Settings, runDir, resume, log.Logger)
	if err != nil {
		return err
	}
	defer run.Close()
	if run.Evaluate, err = scheduledSpyEval(c.Settings, runDir, run); err != nil {
		return err
	}
	// Only now: flags that were refused (a resume with another config, odd --eval-games) must
	// not be left behind as the run's own, or every later plain --resume would be refused too.
	if err := saveFlags(kctx, runDir); err != nil {
		return err
	}
	log.Info().Str("run", runDir).Int("train_pairs", len(run.Train)).Int("held_out", len(run.HeldOut)).
		Int("from_step", run.Step()).Int("steps", c.Settings.Steps).Msg("training")
	run.OnStep = stepPrinter(c.Settings.Steps, run.Step())
	err = run.Run(ctx)
	if errors.Is(err, context.Canceled) {
		log.Warn().Int("step", run.Step()).Str("resume", "vzlocal train --resume "+runDir).Msg("interrupted; checkpoint written")
		return nil
	}
	if err != nil {
		return err
	}
	log.Info().Str("adapter", filepath.Join(runDir, train.AdapterFile)).Int("steps", run.Step()).Msg("done")
	return nil
}

// stepPrinter shows one line per step: a readable one on a terminal, a zerolog record otherwise.
func stepPrinter(total, first int) func(selfplay.StepMetrics) {
	start := time.Now()
	tty := term.IsTerminal(int(os.Stderr.Fd()))
	return func(m selfplay.StepMetrics) {
		done := m.Step + 1 - first
		eta := time.Duration(float64(time.Since(start)) / float64(done) * float64(total-m.Step-1)).Round(time.Second)
		if tty {
			skipped := ""
			if m.Skipped {
				skipped = "  SKIPPED (non-finite)"
			}
			fmt.Fprintf(os.Stderr, "step %d/%d [%-8s] reward %+.3f  acc %.2f  abstain %.2f  KL %.4f  grad %.3f  rollout %.0f tok/s  train %.0f tok/s  ETA %s%s\n",
				m.Step+1, total, m.Phase, m.RewardMean, m.DecisionAccuracy, m.AbstainRate, m.KL, m.GradNorm,
				m.RolloutTokPerSec, m.TrainTokPerSec, eta, skipped)
			return
		}
		log.Info().Int("step", m.Step+1).Int("of", total).Str("phase", m.Phase).Float64("reward", m.RewardMean).
			Float64("acc", m.DecisionAccuracy).Float64("abstain", m.AbstainRate).Float64("kl", m.KL).
			Float64("grad_norm", m.GradNorm).Float64("rollout_tok_s", m.RolloutTokPerSec).
			Float64("train_tok_s", m.TrainTokPerSec).Str("eta", eta.String()).Bool("skipped", m.Skipped).Msg("step")
	}
}

// saveFlags records every train flag's value by name (not the run-control ones).
func saveFlags(kctx *kong.Context, runDir string) error {
	values := map[string]any{}
	for _, f := range kctx.Flags() {
		switch f.Name {
		case "help", "config", "resume", "out", "log-level", "log-json":
			continue
		}
		values[f.Name] = f.Target.Interface()
	}
	b, err := json.MarshalIndent(values, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(runDir, flagsFile), append(b, '\n'))
}

// resumeFlag loads a run's flags.json as the defaults of every flag not given explicitly.
type resumeFlag string

func (r resumeFlag) BeforeResolve(k *kong.Kong, ctx *kong.Context, trace *kong.Path) error {
	dir := string(ctx.FlagValue(trace.Flag).(resumeFlag))
	if dir == "" {
		return nil
	}
	path := filepath.Join(dir, flagsFile)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("--resume %s: not a training run folder (%w)", dir, err)
	}
	values, err := readConfigFile(path)
	if err != nil {
		return err
	}
	ctx.AddResolver(kong.ResolverFunc(func(_ *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
		if v, ok := values[flag.Name]; ok {
			return v, nil
		}
		return nil, nil
	}))
	return nil
}

// checkTrainGameFlags refuses a flag typed for the other game (--spy-* and --switch-* with --game
// qs, --qs-* with the spy game): it would be ignored without a word. Values from --config or a
// resumed run's flags.json, which hold every flag, are not checked.
func checkTrainGameFlags(kctx *kong.Context, game string) error {
	if kctx == nil {
		return nil
	}
	for _, p := range kctx.Path {
		if p.Flag == nil || p.Resolved {
			continue
		}
		name := p.Flag.Name
		switch {
		case game == "qs" && (strings.HasPrefix(name, "spy-") || strings.HasPrefix(name, "switch-")) &&
			name != "spy-top-p" && name != "spy-top-k": // top-p/top-k apply to every game's sampling
			return fmt.Errorf("train --game qs: --%s is a setting of the spy game (the qs game's are --qs-*)", name)
		case game != "qs" && strings.HasPrefix(name, "qs-"):
			return fmt.Errorf("train: --%s is a setting of --game qs", name)
		}
	}
	return nil
}
