package train

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/rs/zerolog"

	"github.com/vzlocal/vzlocal/data"
	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/llm/testmodel"
	"github.com/vzlocal/vzlocal/lora"
	"github.com/vzlocal/vzlocal/lora/cuda"
	"github.com/vzlocal/vzlocal/optim"
	"github.com/vzlocal/vzlocal/selfplay"
)

// defaultConfig is the config `vzlocal train` starts from (kong fills the defaults).
func defaultConfig(t *testing.T) Config {
	t.Helper()
	var c struct {
		C Config `embed:""`
	}
	p, err := kong.New(&c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse(nil); err != nil {
		t.Fatal(err)
	}
	return c.C
}

// tinyFiles writes the tiny llava-style test model once per test.
func tinyFiles(t *testing.T) testmodel.Files {
	t.Helper()
	f, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "llava", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// digitGame is a verifiable toy reward: the fraction of sampled tokens that are digits (byte
// tokens '0'..'9' of the tiny vocabulary, about 3% of a random model's output). GRPO must
// raise it.
type digitGame struct {
	image string
	n     int
	// backendTemp asks with temperature 0: the policy's default temperature.
	backendTemp bool
}

func (g *digitGame) Adapters() []string            { return []string{"policy"} }
func (g *digitGame) Plan() StepPlan                { return StepPlan{Stage: "toy", Train: "policy"} }
func (g *digitGame) EndStep(int, *StepResult) bool { return false }
func (g *digitGame) State() ([]byte, error)        { return []byte("{}"), nil }
func (g *digitGame) Restore([]byte) error          { return nil }

func (g *digitGame) Play(ctx context.Context, step int, pols map[string]selfplay.Policy) (*StepResult, error) {
	res := &StepResult{}
	var rewards []float64
	var reqs []selfplay.Request
	for k := 0; k < 2; k++ {
		temp := 1.0
		if g.backendTemp {
			temp = 0
		}
		reqs = append(reqs, selfplay.Request{User: fmt.Sprintf("Count to %d.", 10+k), Image: g.image, N: g.n, MaxTokens: 12, Temperature: temp})
	}
	out, err := pols["policy"].Complete(ctx, reqs)
	if err != nil {
		return nil, err
	}
	for k, comps := range out {
		var rs []float64
		for _, c := range comps {
			digits := 0
			for _, tok := range c.Tokens {
				if tok >= '0' && tok <= '9' {
					digits++
				}
			}
			rs = append(rs, float64(digits)/float64(len(c.Tokens)))
			res.RolloutTokens += len(c.Tokens)
		}
		adv, _, err := optim.GroupAdvantages(rs, optim.AdvantageConfig{Estimator: optim.AdvGRPO, Eps: 1e-6})
		if err != nil {
			return nil, err
		}
		for i, c := range comps {
			res.Samples = append(res.Samples, Sample{Group: fmt.Sprint(k), Request: reqs[k], Completion: c, Advantage: adv[i]})
		}
		rewards = append(rewards, rs...)
	}
	res.Metrics.RewardMean, res.Metrics.RewardStd = selfplay.MeanStd(rewards)
	return res, nil
}

func openTiny(t *testing.T, f testmodel.Files) (*llm.Model, *lora.CPU) {
	t.Helper()
	return loadTiny(t, f), cpuEngine(t, f)
}

// loadTiny loads the tiny model into llama.cpp for rollouts (closed when the test ends).
func loadTiny(t *testing.T, f testmodel.Files) *llm.Model {
	t.Helper()
	m, err := llm.Load(f.Text, f.MMProj, llm.Options{Threads: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// cpuEngine opens the CPU gradient engine on the tiny model.
func cpuEngine(t *testing.T, f testmodel.Files) *lora.CPU {
	t.Helper()
	e, err := lora.LoadCPU(f.Text, lora.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func readMetrics(t *testing.T, runDir string) []selfplay.StepMetrics {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(runDir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	var out []selfplay.StepMetrics
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m selfplay.StepMetrics
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// digitRun is the toy-reward run of the learning tests: a digitGame with the test image, constant
// learning rate 1e-2, no KL and no importance sampling, so that each step is plain GRPO.
func digitRun(t *testing.T, steps, rank, samples int) (Config, *digitGame) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "img.png")
	if err := os.WriteFile(img, testmodel.TestImage(40, 30, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := defaultConfig(t)
	cfg.Steps, cfg.CheckpointEvery, cfg.Seed = steps, 0, 3
	cfg.LoRA.Rank, cfg.LoRA.Alpha = rank, float64(2*rank)
	cfg.Optim.LR, cfg.Optim.Schedule, cfg.Optim.Warmup = 1e-2, "constant", 0
	cfg.Loss.KLBeta, cfg.Loss.IS = 0, "none"
	return cfg, &digitGame{image: img, n: samples}
}

// trainDigit runs a digit-game run to the end and returns its metrics (one line per step) and
// its run folder.
func trainDigit(t *testing.T, model *llm.Model, engine lora.Engine, cfg Config, game *digitGame) ([]selfplay.StepMetrics, string) {
	t.Helper()
	run := t.TempDir()
	tr, err := New(Setup{Config: cfg, RunDir: run, Game: game, Model: model, Engine: engine, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	ms := readMetrics(t, run)
	if len(ms) != cfg.Steps {
		t.Fatalf("%d metric lines, want %d", len(ms), cfg.Steps)
	}
	return ms, run
}

// TestToyRewardLearns is the learning test: GRPO through the whole loop (llama.cpp rollouts, the
// CPU gradient engine, PG weights, AdamW, in-place adapter swap) must raise a verifiable reward
// well above its start with fixed seeds.
func TestToyRewardLearns(t *testing.T) {
	toyRewardLearns(t, func(files testmodel.Files) lora.Engine { return cpuEngine(t, files) })
}

// TestToyRewardLearnsOnGPU: the same run with the CUDA engine as `vzlocal train --engine cuda`
// opens it (bf16, the base kept as the file's blocks, kept activations given back after each
// update) and, where ggml's CUDA backend is installed, the rollouts on the same GPU.
func TestToyRewardLearnsOnGPU(t *testing.T) {
	if ok, msg := cuda.Available(); !ok {
		t.Skipf("needs libvzlocal_cuda.so and a GPU: %s", msg)
	}
	toyRewardLearns(t, func(files testmodel.Files) lora.Engine {
		e, err := openEngine("cuda", "auto", -1, files.Text, 1, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		if c, ok := e.(io.Closer); ok {
			t.Cleanup(func() { c.Close() })
		}
		return e
	})
}

func toyRewardLearns(t *testing.T, open func(testmodel.Files) lora.Engine) {
	// Weights of std 0.1 (not the default 0.02) give the tied output head enough reach for a
	// rank-8 adapter to move the next-token distribution far; the default model's logits are
	// nearly flat and can move by about one nat at most.
	files, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "llava", Seed: 1, WeightStd: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	cfg, game := digitRun(t, 24, 8, 8)
	ms, run := trainDigit(t, loadTiny(t, files), open(files), cfg, game)
	first := (ms[0].RewardMean + ms[1].RewardMean + ms[2].RewardMean) / 3
	last := (ms[len(ms)-1].RewardMean + ms[len(ms)-2].RewardMean + ms[len(ms)-3].RewardMean) / 3
	t.Logf("digit fraction: first 3 steps %.3f, last 3 steps %.3f", first, last)
	for _, m := range ms {
		if m.Skipped || m.GradNorm == 0 || m.TrainTokPerSec == 0 {
			t.Fatalf("step %d did not train: %+v", m.Step, m)
		}
	}
	if last < first+0.15 || last < 3*first {
		t.Fatalf("reward did not rise clearly: %.3f -> %.3f", first, last)
	}
	if _, err := os.Stat(filepath.Join(run, AdapterFile)); err != nil {
		t.Fatal(err)
	}
}

// spyRunConfig is a small, fast spy-game run on generated CLEVR pairs.
func spyRunConfig(t *testing.T, files testmodel.Files) Config {
	cfg := defaultConfig(t)
	cfg.Model, cfg.MMProj = files.Text, files.MMProj
	cfg.Data, cfg.DataN, cfg.HeldOut = "clevr", 8, 0.25
	cfg.Steps, cfg.GamesPerStep, cfg.CheckpointEvery, cfg.Threads, cfg.Seed = 4, 2, 2, 1, 5
	cfg.Spy.ObserverSamples, cfg.Spy.ClueMaxTokens, cfg.Spy.DecisionMaxTokens = 4, 12, 12
	cfg.Switch.Rule, cfg.Switch.CycleLen = SwitchCycle, 1 // force a switch every step
	cfg.LoRA.Rank, cfg.LoRA.Alpha = 4, 8
	cfg.Optim.LR = 5e-3
	return cfg
}

// TestSpyTrainingBothPhases runs Iterative-SPO steps on generated CLEVR pairs through both
// stages and checks the metrics, transcripts and checkpoints.
func TestSpyTrainingBothPhases(t *testing.T) {
	files := tinyFiles(t)
	cfg := spyRunConfig(t, files)
	runDir := t.TempDir()
	r, err := Open(cfg, runDir, false, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	ms := readMetrics(t, runDir)
	var phases []string
	for _, m := range ms {
		phases = append(phases, m.Phase)
		// A random model's garbage gives every sample of a group the same reward, so these
		// steps carry no gradient (frac_zero_std 1); what is checked here is the loop itself.
		if m.Skipped || m.CompletionLenMean == 0 || m.RolloutTokPerSec == 0 || m.TrainTokPerSec == 0 {
			t.Fatalf("step %d did not run: %+v", m.Step, m)
		}
	}
	if strings.Join(phases, ",") != "decision,clue,decision,clue" {
		t.Fatalf("phases %v, want alternating from decision", phases)
	}
	if !ms[1].PhaseSwitched || ms[0].PhaseSwitched {
		t.Fatalf("phase_switched flags wrong: %v %v", ms[0].PhaseSwitched, ms[1].PhaseSwitched)
	}
	games, err := selfplay.ReadSpyGames(filepath.Join(runDir, GamesFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(games) != cfg.Steps*cfg.GamesPerStep {
		t.Fatalf("%d games recorded, want %d", len(games), cfg.Steps*cfg.GamesPerStep)
	}
	for _, g := range games {
		if err := selfplay.CheckSpyGame(g); err != nil {
			t.Fatal(err)
		}
		if data.HeldOut(g.PairID, cfg.Seed, cfg.HeldOut) {
			t.Fatalf("game %d played held-out pair %s", g.ID, g.PairID)
		}
	}
	dir, step, ok, err := LatestCheckpoint(runDir)
	if err != nil || !ok || step != 4 {
		t.Fatalf("latest checkpoint %s step %d ok %v err %v", dir, step, ok, err)
	}
	for _, f := range []string{"policy.gguf", "policy.adamw", stateFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	a, err := lora.ReadAdapterGGUF(filepath.Join(runDir, AdapterFile), r.Engine.Config())
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Pairs) == 0 {
		t.Fatal("adapter has no pairs")
	}
}

// TestResumeIsExact interrupts a run after step 2 and resumes it: the final adapter must equal an
// uninterrupted run's bit for bit (every random draw derives from (seed, step); checkpoints keep
// F32 adapters and the AdamW state).
func TestResumeIsExact(t *testing.T) {
	files := tinyFiles(t)
	cfg := spyRunConfig(t, files)
	cfg.Switch.Rule = SwitchPaper

	whole := t.TempDir()
	r, err := Open(cfg, whole, false, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.Close()

	cut := t.TempDir()
	r, err = Open(cfg, cut, false, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.OnStep = func(m selfplay.StepMetrics) {
		if m.Step == 1 {
			cancel()
		}
	}
	if err := r.Run(ctx); err == nil {
		t.Fatal("interrupted run reported no error")
	}
	r.Close()
	if _, step, _, _ := LatestCheckpoint(cut); step != 2 {
		t.Fatalf("interrupted run checkpointed step %d, want 2", step)
	}
	r, err = Open(cfg, cut, true, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if r.Step() != 2 {
		t.Fatalf("resumed at step %d, want 2", r.Step())
	}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.Close()

	a, err := lora.ReadAdapterGGUF(filepath.Join(whole, AdapterFile), r.Engine.Config())
	if err != nil {
		t.Fatal(err)
	}
	b, err := lora.ReadAdapterGGUF(filepath.Join(cut, AdapterFile), r.Engine.Config())
	if err != nil {
		t.Fatal(err)
	}
	var diff float64
	pa, pb := a.Params(), b.Params()
	for i := range pa {
		for j := range pa[i] {
			diff = math.Max(diff, math.Abs(float64(pa[i][j]-pb[i][j])))
		}
	}
	if diff != 0 {
		t.Fatalf("resumed adapter differs from the uninterrupted one by %g", diff)
	}
	ms := readMetrics(t, cut)
	for i, m := range ms {
		if m.Step != i {
			t.Fatalf("metrics steps %v: lost or repeated step", ms)
		}
	}

	other := cfg
	other.LoRA.Rank = 8
	if _, err := Open(other, cut, true, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "lora.rank") {
		t.Fatalf("resume with another rank: %v", err)
	}
}
