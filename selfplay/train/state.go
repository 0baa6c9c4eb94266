package train

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"

	"github.com/vzlocal/vzlocal/internal/atomicfile"
	"github.com/vzlocal/vzlocal/lora"
	"github.com/vzlocal/vzlocal/optim"
	"github.com/vzlocal/vzlocal/selfplay"
)

// checkpointState is a checkpoint's state.json: with each adapter's GGUF (F32, bit-exact) and
// AdamW state beside it, everything a resumed run needs to continue exactly. No RNG state is
// saved: every random draw of a step derives from (seed, step).
type checkpointState struct {
	Step        int             `json:"step"` // completed steps
	Game        json.RawMessage `json:"game"`
	MetricsSize int64           `json:"metrics_size"` // bytes of metrics.jsonl at this step
	GamesSize   int64           `json:"games_size"`
	EvalSize    int64           `json:"eval_size"`
	BadSteps    int             `json:"bad_steps"`
	LastStage   string          `json:"last_stage"`
	Stale       bool            `json:"stale"`
	Snapshots   []string        `json:"snapshots"`
}

const stateFile = "state.json"

func readCheckpointState(dir string) (*checkpointState, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	var st checkpointState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %s: %w", dir, stateFile, err)
	}
	return &st, nil
}

// checkpoint saves the last completed step (once per step) and the newest adapter file.
func (t *Trainer) checkpoint() error {
	if t.step == t.saved || t.step == 0 {
		return nil
	}
	game, err := t.Game.State()
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	st := checkpointState{Step: t.step, Game: game, BadSteps: t.badSteps, LastStage: t.lastStage, Stale: t.stale}
	if st.MetricsSize, err = t.metrics.size(); err != nil {
		return err
	}
	if st.GamesSize, err = t.games.size(); err != nil {
		return err
	}
	if st.EvalSize, err = t.evals.size(); err != nil {
		return err
	}
	for name := range t.snapshots {
		st.Snapshots = append(st.Snapshots, name)
	}
	ckpt, err := SaveCheckpoint(t.RunDir, t.step, t.Config.KeepCheckpoints, func(dir string) error {
		for name, a := range t.adapters {
			if err := a.lora.WriteGGUF(filepath.Join(dir, name+".gguf"), lora.TypeF32); err != nil {
				return err
			}
			b, err := a.opt.MarshalBinary()
			if err != nil {
				return err
			}
			if err := atomicfile.WriteFile(filepath.Join(dir, name+".adamw"), b); err != nil {
				return err
			}
		}
		for name, s := range t.snapshots {
			if err := s.lora.WriteGGUF(filepath.Join(dir, name+".gguf"), lora.TypeF32); err != nil {
				return err
			}
		}
		b, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			return err
		}
		return atomicfile.WriteFile(filepath.Join(dir, stateFile), b)
	})
	if err != nil {
		return err
	}
	if err := t.writeAdapters(ckpt); err != nil {
		return err
	}
	t.saved = t.step
	t.Log.Debug().Int("step", t.step).Msg("checkpoint written")
	return nil
}

// writeAdapters puts the newest adapters in the run folder: adapter.gguf is the primary one
// (what export and eval use); a game with several adapters also gets NAME.gguf for each. They are
// hard links to the files of checkpoint folder ckpt (a 7B adapter is hundreds of MB: no second
// and third write), or written again where links are not possible.
func (t *Trainer) writeAdapters(ckpt string) error {
	place := func(name string, a *trainedAdapter, dst string) error {
		if err := atomicfile.Link(filepath.Join(ckpt, name+".gguf"), dst); err == nil {
			return nil
		}
		return a.lora.WriteGGUF(dst, lora.TypeF32)
	}
	primary := t.primaryName()
	if err := place(primary, t.adapters[primary], filepath.Join(t.RunDir, AdapterFile)); err != nil {
		return err
	}
	if len(t.adapters) > 1 {
		for name, a := range t.adapters {
			if err := place(name, a, filepath.Join(t.RunDir, name+".gguf")); err != nil {
				return err
			}
		}
	}
	return nil
}

// primary is the adapter a run is judged by: the last one the game declares (the spy game's
// only policy; V-Zero's solver).
func (t *Trainer) primary() *trainedAdapter { return t.adapters[t.primaryName()] }

func (t *Trainer) primaryName() string {
	names := t.Game.Adapters()
	return names[len(names)-1]
}

func (t *Trainer) restore(st *checkpointState, dir string) error {
	if err := t.Game.Restore(st.Game); err != nil {
		return fmt.Errorf("resume %s: %w", dir, err)
	}
	t.step, t.saved, t.badSteps, t.lastStage, t.stale = st.Step, st.Step, st.BadSteps, st.LastStage, st.Stale
	for _, name := range st.Snapshots {
		a, err := lora.ReadAdapterGGUF(filepath.Join(dir, name+".gguf"), t.Engine.Config())
		if err != nil {
			return fmt.Errorf("resume: %w", err)
		}
		if err := t.addSnapshot(name, a); err != nil {
			return err
		}
	}
	t.Log.Info().Int("step", t.step).Str("checkpoint", dir).Msg("resumed")
	return nil
}

// takeSnapshots freezes copies of adapters when a stage begins (and on the first step): the
// stage's KL reference and the frozen players it plays with.
func (t *Trainer) takeSnapshots(plan StepPlan) error {
	need := append([]string(nil), plan.Frozen...)
	if plan.Reference != "" {
		need = append(need, plan.Reference)
	}
	missing := false
	for _, n := range need {
		if _, ok := t.snapshots[n]; !ok {
			missing = true
		}
	}
	if !t.stale && !missing {
		return nil
	}
	for name, s := range t.snapshots {
		s.llm.Free()
		delete(t.snapshots, name)
	}
	for _, name := range need {
		if _, done := t.snapshots[name]; done {
			continue
		}
		src, ok := t.adapters[strings.TrimSuffix(name, Snapshot(""))]
		if !ok || !strings.HasSuffix(name, Snapshot("")) {
			return fmt.Errorf("train: game asks for snapshot %q of no adapter", name)
		}
		if err := t.addSnapshot(name, src.lora.Clone()); err != nil {
			return err
		}
	}
	t.stale = false
	return nil
}

func (t *Trainer) addSnapshot(name string, a *lora.Adapter) error {
	la, err := t.loadIntoRollout(name, a)
	if err != nil {
		return err
	}
	pol := selfplay.NewLlamaPolicy(t.Model, la, uint64(t.Config.Seed))
	pol.TopK, pol.TopP = t.Config.Spy.TopK, float32(t.Config.Spy.TopP)
	t.snapshots[name] = &frozenAdapter{lora: a, llm: la, policy: pol}
	return nil
}

// pgConfig maps the objective's flags onto optim's settings.
func pgConfig(c LossConfig, maxTokens int) (optim.PGConfig, error) {
	pg := optim.PGConfig{
		Agg: optim.LossAgg(c.LossAgg), NormLen: maxTokens,
		ClipLow: c.ClipLow, ClipHigh: c.ClipHigh,
		BetaKL: c.KLBeta, KL: optim.KLEstimator(c.KLEstimator),
	}
	level, err := optim.ParseISLevel(c.ISLevel)
	if err != nil {
		return pg, err
	}
	switch c.IS {
	case "tis":
		pg.TIS, pg.TISCap = level, c.ISCap
	case "mis":
		pg.MIS, pg.MISMin, pg.MISMax = level, c.ISMin, c.ISCap
	case "none", "":
	default:
		return pg, fmt.Errorf("train: importance sampling %q: want none, tis or mis", c.IS)
	}
	if err := pg.Validate(); err != nil {
		return pg, fmt.Errorf("train: %w", err)
	}
	return pg, nil
}

// stepSeed derives the sampling seed of one adapter's policy in one step.
func stepSeed(seed int64, step int, adapter string) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d/%s", seed, step, adapter)
	return h.Sum64()
}

func joinLines(lines []string) string { return strings.Join(lines, "\n  ") }
