package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/llm/testmodel"
	"github.com/vzlocal/vzlocal/lora"
	"github.com/vzlocal/vzlocal/optim"
	"github.com/vzlocal/vzlocal/selfplay"
)

// faultyEngine wraps the CPU engine: from step `nanFrom` on, every gradient is NaN; memory
// estimates can be inflated.
type faultyEngine struct {
	lora.Engine
	calls, nanFrom int // Backward calls before gradients turn NaN (-1: never)
	memory         int64
	released       []int // the Backward calls made when each ReleaseWorkspace came
}

func (e *faultyEngine) ReleaseWorkspace() error {
	e.released = append(e.released, e.calls)
	return nil
}

func (e *faultyEngine) Backward(b *lora.Batch, w [][]float32) (*lora.Result, error) {
	r, err := e.Engine.Backward(b, w)
	e.calls++
	if err == nil && e.nanFrom >= 0 && e.calls > e.nanFrom {
		r.Grads.Params()[0][0] = float32(math.NaN())
	}
	return r, err
}

func (e *faultyEngine) MemoryEstimate(b *lora.Batch) (int64, error) {
	if e.memory > 0 {
		return e.memory, nil
	}
	return e.Engine.MemoryEstimate(b)
}

func guardSetup(t *testing.T, eng *faultyEngine) (Setup, string) {
	t.Helper()
	files, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "llava", Seed: 1, WeightStd: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	model, cpu := openTiny(t, files)
	eng.Engine = cpu
	cfg, game := digitRun(t, 8, 4, 4)
	cfg.CheckpointEvery = 1
	run := t.TempDir()
	// The digit game has two groups per step, so two Backward calls per step.
	return Setup{Config: cfg, RunDir: run, Game: game, Model: model, Engine: eng, Log: zerolog.Nop()}, run
}

// TestNonFiniteStepsSkippedThenStop: a step with a NaN gradient is skipped (logged in the
// metrics, adapter unchanged, in llama.cpp too); three in a row stop the run with a clear error
// and the last good adapter on disk.
func TestNonFiniteStepsSkippedThenStop(t *testing.T) {
	eng := &faultyEngine{nanFrom: 4} // steps 0 and 1 are good, NaN from step 2 on
	s, run := guardSetup(t, eng)
	tr, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	var goodB []float32
	tr.OnStep = func(m selfplay.StepMetrics) {
		if m.Step == 1 {
			goodB = append([]float32(nil), tr.primary().lora.Pairs[0].B...)
		}
	}
	err = tr.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "3 steps in a row had a non-finite loss or gradient") {
		t.Fatalf("run error %v, want a stop after 3 non-finite steps", err)
	}
	ms := readMetrics(t, run)
	if len(ms) != 5 {
		t.Fatalf("%d steps logged, want 5 (2 good, 3 skipped)", len(ms))
	}
	for i, m := range ms {
		if m.Skipped != (i >= 2) {
			t.Fatalf("step %d skipped=%v", i, m.Skipped)
		}
	}
	now := tr.primary().lora.Pairs[0].B
	for i := range now {
		if now[i] != goodB[i] {
			t.Fatal("a skipped step changed the adapter")
		}
	}
	got, err := tr.primary().llm.Tensor(tr.primary().lora.Pairs[0].Name + ".lora_b")
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if math.Abs(float64(got[i]-goodB[i])) > 1e-6 {
			t.Fatal("llama.cpp's adapter is not the last good one")
		}
	}
	a, err := lora.ReadAdapterGGUF(filepath.Join(run, AdapterFile), eng.Config())
	if err != nil {
		t.Fatal(err)
	}
	for i := range goodB {
		if a.Pairs[0].B[i] != goodB[i] {
			t.Fatal("adapter on disk is not the last good one")
		}
	}
}

// TestMemoryRefusal: a batch the engine estimates beyond the available memory is refused before
// it runs, with the settings to lower.
func TestMemoryRefusal(t *testing.T) {
	eng := &faultyEngine{nanFrom: -1, memory: 1 << 50}
	s, _ := guardSetup(t, eng)
	tr, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	err = tr.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "working memory") || !strings.Contains(err.Error(), "lower") {
		t.Fatalf("run error %v, want a memory refusal", err)
	}
	if eng.calls != 0 {
		t.Fatalf("%d backward passes ran before the refusal", eng.calls)
	}
}

// TestWorkspaceReleasedAfterEachUpdate: a GPU engine's working memory is given back after every
// update (two Backward calls a step here), before the next step's rollouts.
func TestWorkspaceReleasedAfterEachUpdate(t *testing.T) {
	eng := &faultyEngine{nanFrom: -1}
	s, _ := guardSetup(t, eng)
	s.Config.Steps = 3
	tr, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := []int{2, 4, 6}; !slices.Equal(eng.released, want) {
		t.Fatalf("ReleaseWorkspace after %v Backward calls, want %v", eng.released, want)
	}
}

// TestNonFiniteLaterUpdateSkipsWholeStep: with two updates per batch, a NaN in the second update
// skips the step whole: the first update is undone (adapter and optimizer) and llama.cpp's copy
// still equals the adapter.
func TestNonFiniteLaterUpdateSkipsWholeStep(t *testing.T) {
	eng := &faultyEngine{nanFrom: 2} // step 0: update 0 good (calls 1-2), update 1 NaN (calls 3-4)
	s, _ := guardSetup(t, eng)
	s.Config.Loss.UpdatesPerBatch = 2
	s.Config.Steps = 1
	tr, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	start := tr.primary().lora.Clone()
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if eng.calls != 4 {
		t.Fatalf("%d backward calls, want 4", eng.calls)
	}
	now := tr.primary()
	startParams := start.Params()
	for i, p := range now.lora.Params() {
		for j := range p {
			if p[j] != startParams[i][j] {
				t.Fatalf("the skipped step left its first update applied (param %d[%d])", i, j)
			}
		}
	}
	if n := now.opt.Steps(); n != 0 {
		t.Fatalf("optimizer counts %d updates after a skipped step, want 0", n)
	}
	got, err := now.llm.Tensor(now.lora.Pairs[0].Name + ".lora_b")
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != now.lora.Pairs[0].B[i] {
			t.Fatal("llama.cpp's adapter differs from the trainer's")
		}
	}
}

// TestInterruptedEvaluationKeepsStepWhole: Ctrl-C during a scheduled evaluation (after the step's
// update) must not checkpoint a half step: the resumed run ends with the uninterrupted run's
// adapter, and no step is lost or repeated.
func TestInterruptedEvaluationKeepsStepWhole(t *testing.T) {
	run := func(s Setup, ctx context.Context, cancelAt int, cancel func()) error {
		s.Config.Steps, s.Config.CheckpointEvery, s.Config.EvalEvery = 3, 0, 1
		s.Evaluate = func(ctx context.Context, step int, _ *llm.Adapter) (EvalResult, error) {
			if step == cancelAt {
				cancel()
				return EvalResult{}, ctx.Err()
			}
			return EvalResult{Games: 2, WinRate: 0.5}, nil
		}
		tr, err := New(s)
		if err != nil {
			t.Fatal(err)
		}
		return tr.Run(ctx)
	}
	s, whole := guardSetup(t, &faultyEngine{nanFrom: -1})
	if err := run(s, context.Background(), -1, func() {}); err != nil {
		t.Fatal(err)
	}
	cut := t.TempDir()
	s.RunDir = cut
	ctx, cancel := context.WithCancel(context.Background())
	if err := run(s, ctx, 1, cancel); err == nil {
		t.Fatal("interrupted run reported no error")
	}
	s.Resume = true
	if err := run(s, context.Background(), -1, func() {}); err != nil {
		t.Fatal(err)
	}
	cfg := s.Engine.Config()
	a, err := lora.ReadAdapterGGUF(filepath.Join(whole, AdapterFile), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := lora.ReadAdapterGGUF(filepath.Join(cut, AdapterFile), cfg)
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := a.Params(), b.Params()
	for i := range pa {
		for j := range pa[i] {
			if pa[i][j] != pb[i][j] {
				t.Fatalf("resumed adapter differs from the uninterrupted one (param %d[%d])", i, j)
			}
		}
	}
	ms := readMetrics(t, cut)
	if len(ms) != 3 {
		t.Fatalf("%d metric lines, want 3", len(ms))
	}
	for i, m := range ms {
		if m.Step != i {
			t.Fatalf("metrics steps %v: lost or repeated step", ms)
		}
	}
}

// lastStepMetrics runs the trainer the setup describes and returns its last step's metrics.
func lastStepMetrics(t *testing.T, s Setup) selfplay.StepMetrics {
	t.Helper()
	tr, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	var m selfplay.StepMetrics
	tr.OnStep = func(x selfplay.StepMetrics) { m = x }
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSumNormUsesTheSamplesTokenLimit: seq-mean-token-sum-norm divides by the max new tokens the
// step's samples were drawn with, not by the spy clue limit (a decision turn may be longer).
func TestSumNormUsesTheSamplesTokenLimit(t *testing.T) {
	s, _ := guardSetup(t, &faultyEngine{nanFrom: -1})
	s.Config.Steps = 1
	s.Config.Loss.LossAgg = string(optim.AggSeqMeanTokenSumNorm)
	s.Config.Spy.ClueMaxTokens, s.Config.Spy.DecisionMaxTokens = 4, 4 // the digit game samples 12
	m := lastStepMetrics(t, s)
	if m.CompletionLenMax > 12 || m.GradNorm == 0 {
		t.Fatalf("step did not train: %+v", m)
	}
}

// TestMemoryRefusalNamesTheGamesFlags: the refusal of a qs run names the qs settings to lower.
func TestMemoryRefusalNamesTheGamesFlags(t *testing.T) {
	eng := &faultyEngine{nanFrom: -1, memory: 1 << 50}
	s, _ := guardSetup(t, eng)
	s.Config.Game = "qs"
	tr, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	err = tr.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "--qs-answer-tokens") || strings.Contains(err.Error(), "--spy-") {
		t.Fatalf("run error %v, want a refusal naming the qs settings", err)
	}
}

// TestBackendDefaultTemperatureScoredAlike: a request without a temperature is sampled at the
// policy's default (0.8); the gradient engine must score it at the same temperature, so that on
// the first step (adapter zero, F32 model) trainer and rollout log-probs agree.
func TestBackendDefaultTemperatureScoredAlike(t *testing.T) {
	s, _ := guardSetup(t, &faultyEngine{nanFrom: -1})
	s.Config.Steps = 1
	s.Game.(*digitGame).backendTemp = true
	m := lastStepMetrics(t, s)
	if m.LogRatioMean > 0.02 { // 0.18 when scored at T = 1
		t.Fatalf("|log pi_theta - log pi_b| = %g: the engine scored another temperature than the sampler's", m.LogRatioMean)
	}
}

// TestFailedNewLeavesNoOpenFiles: a New that fails after opening the run's logs (a checkpoint
// without its adapter) closes them again.
func TestFailedNewLeavesNoOpenFiles(t *testing.T) {
	s, run := guardSetup(t, &faultyEngine{nanFrom: -1})
	s.Config.Steps = 1
	tr, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir, _, _, err := LatestCheckpoint(run)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "policy.gguf")); err != nil {
		t.Fatal(err)
	}
	openFiles := func() int {
		fds, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		n := 0
		for _, fd := range fds {
			if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(target, run) {
				n++
			}
		}
		return n
	}
	before := openFiles()
	s.Resume = true
	if _, err := New(s); err == nil {
		t.Fatal("resume without the checkpoint's adapter succeeded")
	}
	if after := openFiles(); after != before {
		t.Fatalf("%d files of the run open after a failed New, %d before", after, before)
	}
}
