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

	"github.com/vzlocal/vzlocal/data"
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
