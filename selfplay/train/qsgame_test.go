package train

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"github.com/rs/zerolog"

	"github.com/vzlocal/vzlocal/data"
	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/llm/testmodel"
	"github.com/vzlocal/vzlocal/lora"
	"github.com/vzlocal/vzlocal/selfplay"
)

// qsTestPool writes n small images with item lists (the scripted policy reads the items).
func qsTestPool(t *testing.T, n int) []selfplay.QSImage {
	t.Helper()
	dir := t.TempDir()
	colors := []string{"red", "blue", "green", "gray", "purple", "cyan"}
	var out []selfplay.QSImage
	for i := range n {
		path := filepath.Join(dir, fmt.Sprintf("img%02d.png", i))
		img := image.NewRGBA(image.Rect(0, 0, 16, 16))
		for p := range img.Pix {
			img.Pix[p] = uint8(30*i + p%7)
		}
		img.Set(0, 0, color.White)
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
		p := &data.Pair{ID: fmt.Sprintf("img%02d", i)}
		for k := range 3 {
			d := fmt.Sprintf("%s cube %d", colors[(i+k)%len(colors)], k)
			p.Items = append(p.Items, data.Item{Original: d, Modified: d})
		}
		out = append(out, selfplay.QSImage{ID: p.ID, Path: path, Pair: p})
	}
	return out
}

func qsTestGame(t *testing.T, pool []selfplay.QSImage, sched QSSchedule) *QSGame {
	t.Helper()
	prompts, err := selfplay.LoadQSPrompts("")
	if err != nil {
		t.Fatal(err)
	}
	eng, err := selfplay.NewQSEngine(selfplay.DefaultQSSettings(), prompts)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewQSGame(eng, pool, 3, 7, sched)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// qsScriptedPolicies stands in for the trainer's policies: the three adapters differ by seed.
func qsScriptedPolicies() map[string]selfplay.Policy {
	return map[string]selfplay.Policy{
		QSQuestioner:       selfplay.NewScriptedQSPolicy(1),
		QSSolver:           selfplay.NewScriptedQSPolicy(2),
		Snapshot(QSSolver): &selfplay.ScriptedQSPolicy{Seed: 3, NoiseRate: 0.3, NoBoxRate: 0.05},
	}
}

func TestQSGameSchedule(t *testing.T) {
	g := qsTestGame(t, qsTestPool(t, 4), QSSchedule{Iterations: 2, QuestionerSteps: 2, SolverSteps: 1})
	if got := g.Adapters(); !reflect.DeepEqual(got, []string{"questioner", "solver"}) {
		t.Fatalf("adapters %v", got)
	}
	var stages, switches []string
	var iters []int
	for step := range 7 {
		p := g.Plan()
		stages, iters = append(stages, p.Stage), append(iters, g.Iteration())
		if p.Train != p.Stage || p.Reference != Snapshot(p.Train) {
			t.Fatalf("step %d plan %+v: trains the stage's adapter with its stage-start snapshot as reference", step, p)
		}
		wantFrozen := []string(nil)
		if p.Stage == selfplay.StageSolver {
			wantFrozen = []string{Snapshot(QSSolver)}
		}
		if !reflect.DeepEqual(p.Frozen, wantFrozen) {
			t.Fatalf("step %d frozen %v, want %v", step, p.Frozen, wantFrozen)
		}
		if g.EndStep(step, &StepResult{}) {
			switches = append(switches, fmt.Sprint(step+1))
		}
	}
	if s := strings.Join(stages, ","); s != "questioner,questioner,solver,questioner,questioner,solver,questioner" {
		t.Fatalf("stages %s", s)
	}
	if fmt.Sprint(iters) != "[1 1 1 2 2 2 3]" || strings.Join(switches, ",") != "2,3,5,6" {
		t.Fatalf("iterations %v, switches at %v", iters, switches)
	}
	if n := g.Schedule().TotalSteps(); n != 6 {
		t.Fatalf("total steps %d, want 6", n)
	}
	c := QSConfig{Iterations: 2}
	if s := c.Schedule(100); s.QuestionerSteps != 25 || s.SolverSteps != 25 {
		t.Fatalf("default stage length for 100 steps: %+v", s)
	}
	c.SolverSteps = 3
	if s := c.Schedule(1); s.QuestionerSteps != 1 || s.SolverSteps != 3 {
		t.Fatalf("schedule %+v", s)
	}
}

func TestQSGamePlayScripted(t *testing.T) {
	g := qsTestGame(t, qsTestPool(t, 5), QSSchedule{Iterations: 1, QuestionerSteps: 1, SolverSteps: 1})
	ctx := context.Background()
	res, err := g.Play(ctx, 0, qsScriptedPolicies())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Samples) != 3*4 {
		t.Fatalf("%d questioner samples, want 3 images x 4", len(res.Samples))
	}
	groups := map[string]int{}
	for _, s := range res.Samples {
		groups[s.Group]++
		if s.Request.Role != selfplay.RoleQuestioner || s.Request.Image == "" || !strings.Contains(s.Request.User, "<question>") {
			t.Fatalf("questioner sample with request %+v", s.Request)
		}
	}
	if len(groups) != 3 {
		t.Fatalf("groups %v", groups)
	}
	sum, ok := res.Transcripts[len(res.Transcripts)-1].(selfplay.QSSummary)
	if !ok || len(res.Transcripts) != 13 {
		t.Fatalf("%d transcripts, last %T", len(res.Transcripts), res.Transcripts[len(res.Transcripts)-1])
	}
	m := res.Metrics
	if m.Phase != selfplay.StageQuestioner || m.RewardMean != sum.RewardMean || m.DecisionAccuracy != sum.SolverAccuracy ||
		m.InvalidRate != 1-sum.ValidRate || m.FracZeroStd != sum.FracZeroStd || sum.Iteration != 1 {
		t.Fatalf("metrics %+v do not map the summary %+v", m, sum)
	}
	for _, tr := range res.Transcripts[:12] {
		r := tr.(*selfplay.QSRecord)
		if r.Iteration != 1 || r.Stage != selfplay.StageQuestioner {
			t.Fatalf("record %+v", r)
		}
	}
	if g.EndStep(0, res) != true {
		t.Fatal("a one-step questioner stage did not end")
	}

	// The solver stage needs the stage-start snapshot of the solver.
	pols := qsScriptedPolicies()
	delete(pols, Snapshot(QSSolver))
	if _, err := g.Play(ctx, 1, pols); err == nil || !strings.Contains(err.Error(), Snapshot(QSSolver)) {
		t.Fatalf("solver stage without the previous solver: %v", err)
	}
	res, err = g.Play(ctx, 1, qsScriptedPolicies())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Samples {
		if s.Request.Role != selfplay.RoleSolver || s.Request.N != 5 {
			t.Fatalf("solver sample with request %+v", s.Request)
		}
	}
	if res.Metrics.Phase != selfplay.StageSolver || len(res.Samples)%5 != 0 {
		t.Fatalf("solver step: phase %s, %d samples", res.Metrics.Phase, len(res.Samples))
	}
	if _, err := g.Play(ctx, 2, map[string]selfplay.Policy{}); err == nil {
		t.Fatal("played without policies")
	}
}

// TestQSGameResume checkpoints the game's state after every step (inside stages and at their
// boundaries) and continues from it in a fresh game: the rest of the run must be identical.
func TestQSGameResume(t *testing.T) {
	pool := qsTestPool(t, 4)
	sched := QSSchedule{Iterations: 2, QuestionerSteps: 2, SolverSteps: 2}
	const steps = 8
	play := func(g *QSGame, from int) []string {
		var out []string
		for step := from; step < steps; step++ {
			res, err := g.Play(context.Background(), step, qsScriptedPolicies())
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(struct {
				Plan StepPlan
				Res  *StepResult
			}{g.Plan(), res})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(b))
			g.EndStep(step, res)
		}
		return out
	}
	whole := play(qsTestGame(t, pool, sched), 0)
	g := qsTestGame(t, pool, sched)
	for cut := 0; cut < steps; cut++ {
		st, err := g.State()
		if err != nil {
			t.Fatal(err)
		}
		resumed := qsTestGame(t, pool, sched)
		if err := resumed.Restore(st); err != nil {
			t.Fatalf("restore at step %d: %v", cut, err)
		}
		rest := play(resumed, cut)
		if !reflect.DeepEqual(rest, whole[cut:]) {
			t.Fatalf("resumed at step %d: the run differs", cut)
		}
		play1 := func() {
			res, err := g.Play(context.Background(), cut, qsScriptedPolicies())
			if err != nil {
				t.Fatal(err)
			}
			g.EndStep(cut, res)
		}
		play1()
	}
	if g.Iteration() != 3 {
		t.Fatalf("after two iterations the game is in iteration %d", g.Iteration())
	}
}

func TestQSGameBadInput(t *testing.T) {
	pool := qsTestPool(t, 2)
	sched := QSSchedule{Iterations: 2, QuestionerSteps: 2, SolverSteps: 1}
	g := qsTestGame(t, pool, sched)
	for _, bad := range []string{
		``, `{`, `[]`, `{"stage":"decision","iteration":1}`, `{"stage":"questioner","iteration":0}`,
		`{"stage":"solver","iteration":1,"steps_in_stage":1}`, `{"stage":"questioner","iteration":1,"steps_in_stage":-1}`,
	} {
		if err := g.Restore([]byte(bad)); err == nil {
			t.Errorf("state %q accepted", bad)
		}
	}
	if g.Plan().Stage != selfplay.StageQuestioner || g.Iteration() != 1 {
		t.Fatal("a refused state changed the game")
	}
	if err := g.Restore([]byte(`{"stage":"solver","iteration":2,"steps_in_stage":0}`)); err != nil || g.Plan().Train != QSSolver {
		t.Fatalf("good state: %v", err)
	}
	// A resumed run keeps the schedule it began with (--steps may change on resume).
	saved := qsTestGame(t, pool, QSSchedule{Iterations: 1, QuestionerSteps: 5, SolverSteps: 4})
	saved.EndStep(0, &StepResult{})
	st, err := saved.State()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Restore(st); err != nil || g.Schedule() != saved.Schedule() || g.Plan().Stage != selfplay.StageQuestioner {
		t.Fatalf("restored schedule %+v, want %+v (%v)", g.Schedule(), saved.Schedule(), err)
	}
	if err := g.Restore([]byte(`{"stage":"solver","iteration":1,"schedule":{"iterations":0,"questioner_steps":1,"solver_steps":1}}`)); err == nil {
		t.Error("state with an impossible schedule accepted")
	}
	eng := g.engine
	for _, c := range []struct {
		images []selfplay.QSImage
		per    int
		sched  QSSchedule
	}{
		{nil, 1, sched}, {pool, 0, sched},
		{pool, 1, QSSchedule{Iterations: 0, QuestionerSteps: 1, SolverSteps: 1}},
		{pool, 1, QSSchedule{Iterations: 1, QuestionerSteps: 0, SolverSteps: 1}},
	} {
		if _, err := NewQSGame(eng, c.images, c.per, 1, c.sched); err == nil {
			t.Errorf("game %d images, %d per step, %+v accepted", len(c.images), c.per, c.sched)
		}
	}
	if _, err := NewQSGame(nil, pool, 1, 1, sched); err == nil {
		t.Error("game without engine accepted")
	}
	if _, err := NewQSGameFromConfig(QSConfig{Iterations: 1, Questions: 0, SolverVotes: 10, LabelVotes: 10, SolverSamples: 5, MaxConfidence: 0.8}, 1, pool, 1, 4); err == nil {
		t.Error("config with no questions per image accepted")
	}
}

func TestQSGameImagesCoverThePool(t *testing.T) {
	pool := qsTestPool(t, 5)
	g := qsTestGame(t, pool, QSSchedule{Iterations: 1, QuestionerSteps: 1, SolverSteps: 1})
	seen := map[string]int{}
	for step := range 5 { // 15 draws: three epochs of five
		for _, img := range g.imagesForStep(step) {
			seen[img.ID]++
		}
	}
	for _, img := range pool {
		if seen[img.ID] != 3 {
			t.Fatalf("image %s drawn %d times in three epochs: %v", img.ID, seen[img.ID], seen)
		}
	}
	if !reflect.DeepEqual(g.imagesForStep(3), g.imagesForStep(3)) {
		t.Fatal("a step's images are not a function of the step")
	}
}

// qsParityPolicy wraps a trainer's llama.cpp policy for the tiny model, whose random weights never
// write a question: each completion keeps the model's tokens and behaviour log-probs, but its
// text becomes a scripted player's when the first sampled token is even. The reward stays a
// function of the sampled tokens, so GRPO has real groups with spread to learn from.
type qsParityPolicy struct {
	model, script selfplay.Policy
}

func (p *qsParityPolicy) Complete(ctx context.Context, reqs []selfplay.Request) ([][]selfplay.Completion, error) {
	out, err := p.model.Complete(ctx, reqs)
	if err != nil {
		return nil, err
	}
	scripted, err := p.script.Complete(ctx, reqs)
	if err != nil {
		return nil, err
	}
	for i := range out {
		for k := range out[i] {
			if toks := out[i][k].Tokens; len(toks) > 0 && toks[0]%2 == 0 {
				out[i][k].Text = scripted[i][k].Text
			}
		}
	}
	return out, nil
}

// qsParityGame is the real game with its policies wrapped in qsParityPolicy.
type qsParityGame struct{ *QSGame }

func (g qsParityGame) Play(ctx context.Context, step int, pols map[string]selfplay.Policy) (*StepResult, error) {
	wrapped := map[string]selfplay.Policy{}
	for name, p := range pols {
		wrapped[name] = &qsParityPolicy{model: p, script: &selfplay.ScriptedQSPolicy{Seed: 1, NoiseRate: 0.2}}
	}
	return g.QSGame.Play(ctx, step, wrapped)
}

func qsRunConfig(t *testing.T, files testmodel.Files) Config {
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
	cfg := c.C
	cfg.Model, cfg.MMProj, cfg.Game = files.Text, files.MMProj, "qs"
	cfg.Steps, cfg.GamesPerStep, cfg.CheckpointEvery, cfg.Threads, cfg.Seed = 4, 2, 2, 1, 3
	cfg.Spy.ClueMaxTokens, cfg.Spy.DecisionMaxTokens = 10, 10
	cfg.LoRA.Rank, cfg.LoRA.Alpha = 4, 8
	cfg.Optim.LR = 5e-3
	return cfg
}

// qsTrainer opens the tiny model and a trainer of one V-Zero iteration (two Questioner steps, two
// Solver steps) on pool.
func qsTrainer(t *testing.T, cfg Config, files testmodel.Files, pool []selfplay.QSImage, runDir string, resume bool) (*Trainer, *llm.Model) {
	t.Helper()
	m, err := llm.Load(files.Text, files.MMProj, llm.Options{Threads: 1, Seed: 1, ContextSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	eng, err := lora.LoadCPU(files.Text, lora.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	qc := QSConfig{Iterations: 1, QuestionerSteps: 2, SolverSteps: 2, Questions: 4, SolverVotes: 4, LabelVotes: 4, SolverSamples: 3,
		MinConfidence: 0.3, MaxConfidence: 0.8, Temperature: 1, QuestionTokens: 10, AnswerTokens: 10}
	g, err := NewQSGameFromConfig(qc, cfg.Seed, pool, cfg.GamesPerStep, cfg.Steps)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := New(Setup{Config: cfg, RunDir: runDir, Game: qsParityGame{g}, Model: m, Engine: eng, Resume: resume, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return tr, m
}

func qsReadAdapter(t *testing.T, path string, files testmodel.Files) *lora.Adapter {
	t.Helper()
	eng, err := lora.LoadCPU(files.Text, lora.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	a, err := lora.ReadAdapterGGUF(path, eng.Config())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestQSTrainingIteration trains one whole V-Zero iteration on the tiny model with CLEVR pairs'
// original images as the unlabeled pool: both adapters are trained and written, a run cut inside
// the Questioner stage and again inside the Solver stage resumes to the very same adapters, and
// swapping the Questioner and Solver adapters over the one base changes the logits.
func TestQSTrainingIteration(t *testing.T) {
	files, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "llava", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	pairDir := t.TempDir()
	if _, err := data.GenerateCLEVR(pairDir, data.CLEVROptions{N: 4, Seed: 2, Workers: 1, Width: 96, Height: 64}); err != nil {
		t.Fatal(err)
	}
	pairs, err := data.ReadDir(pairDir)
	if err != nil {
		t.Fatal(err)
	}
	pool := selfplay.QSImagesOfPairs(pairs)
	cfg := qsRunConfig(t, files)

	whole := t.TempDir()
	tr, _ := qsTrainer(t, cfg, files, pool, whole, false)
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	ms := readQSMetrics(t, whole)
	var phases []string
	for _, m := range ms {
		phases = append(phases, m.Phase)
		if m.Skipped || m.GradNorm == 0 {
			t.Fatalf("step %d did not train: %+v", m.Step, m)
		}
	}
	if strings.Join(phases, ",") != "questioner,questioner,solver,solver" || !ms[2].PhaseSwitched {
		t.Fatalf("phases %v (switch flags %v %v)", phases, ms[1].PhaseSwitched, ms[2].PhaseSwitched)
	}
	lines := readQSTranscript(t, whole)
	var records, summaries int
	for _, l := range lines {
		switch l["kind"] {
		case selfplay.QSKindQuestion:
			records++
			if img, _ := l["image"].(string); !strings.HasSuffix(img, ".original.png") {
				t.Fatalf("question on %q, not an original image", img)
			}
		case selfplay.QSKindStep:
			summaries++
		}
	}
	if records != 2*2*4+2*2 || summaries != 4 {
		t.Fatalf("%d question records and %d step summaries", records, summaries)
	}
	q := qsReadAdapter(t, filepath.Join(whole, QSQuestioner+".gguf"), files)
	s := qsReadAdapter(t, filepath.Join(whole, QSSolver+".gguf"), files)
	if !qsNonZero(q.Pairs[0].B) || !qsNonZero(s.Pairs[0].B) {
		t.Fatal("an adapter was not trained (B = 0)")
	}

	// Cut after step 1 (inside the Questioner stage) and after step 3 (inside the Solver stage,
	// with the previous Solver's snapshot in the checkpoint), resume each time.
	cut := t.TempDir()
	for _, stopAfter := range []int{0, 2, -1} {
		tr, _ := qsTrainer(t, cfg, files, pool, cut, stopAfter != 0)
		ctx, cancel := context.WithCancel(context.Background())
		tr.OnStep = func(m selfplay.StepMetrics) {
			if m.Step == stopAfter {
				cancel()
			}
		}
		err := tr.Run(ctx)
		cancel()
		if (err != nil) != (stopAfter >= 0) {
			t.Fatalf("run stopping after step %d: %v", stopAfter, err)
		}
	}
	for _, name := range []string{QSQuestioner, QSSolver} {
		a := qsReadAdapter(t, filepath.Join(whole, name+".gguf"), files)
		b := qsReadAdapter(t, filepath.Join(cut, name+".gguf"), files)
		pa, pb := a.Params(), b.Params()
		for i := range pa {
			if !reflect.DeepEqual(pa[i], pb[i]) {
				t.Fatalf("resumed %s adapter differs from the uninterrupted run's", name)
			}
		}
	}
	if got := readQSTranscript(t, cut); !reflect.DeepEqual(got, lines) {
		t.Fatalf("resumed transcript differs (%d lines, want %d)", len(got), len(lines))
	}

	// One base, two adapters: the logits of one sequence under each.
	m, err := llm.Load(files.Text, files.MMProj, llm.Options{Threads: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	qa, err := m.LoadAdapter(filepath.Join(whole, QSQuestioner+".gguf"))
	if err != nil {
		t.Fatal(err)
	}
	sa, err := m.LoadAdapter(filepath.Join(whole, QSSolver+".gguf"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := m.FormatChat([]llm.Message{{Role: "user", Content: llm.MediaMarker() + "\nWhat colour is the cube? A) red B) blue C) green D) gray"}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(pool[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	prompt, err := m.Tokenize(text, img)
	if err != nil {
		t.Fatal(err)
	}
	completion, err := m.TokenizeText(`\boxed{B}`, false)
	if err != nil {
		t.Fatal(err)
	}
	logits := func(a *llm.Adapter) [][]float32 {
		scale := float32(1)
		if a == nil {
			scale = 0
		}
		if err := m.SetAdapter(a, scale); err != nil {
			t.Fatal(err)
		}
		l, err := m.Logits(prompt, completion)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	lq, ls, lbase := logits(qa), logits(sa), logits(nil)
	if reflect.DeepEqual(lq, ls) || reflect.DeepEqual(lq, lbase) || reflect.DeepEqual(ls, lbase) {
		t.Fatal("questioner, solver and base give the same logits: the adapter swap changes nothing")
	}
	if !reflect.DeepEqual(logits(qa), lq) {
		t.Fatal("swapping back to the questioner does not give its logits again")
	}
}

func readQSMetrics(t *testing.T, runDir string) []selfplay.StepMetrics {
	t.Helper()
	var out []selfplay.StepMetrics
	for _, l := range qsReadJSONL(t, filepath.Join(runDir, MetricsFile)) {
		var m selfplay.StepMetrics
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func readQSTranscript(t *testing.T, runDir string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range qsReadJSONL(t, filepath.Join(runDir, GamesFile)) {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func qsReadJSONL(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func qsNonZero(xs []float32) bool {
	for _, x := range xs {
		if x != 0 {
			return true
		}
	}
	return false
}
