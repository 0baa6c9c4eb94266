package selfplay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/vzlocal/vzlocal/optim"
)

func qsTestEngine(t testing.TB, mutate func(*QSSettings)) *QSEngine {
	t.Helper()
	s := DefaultQSSettings()
	if mutate != nil {
		mutate(&s)
	}
	p, err := LoadQSPrompts("")
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewQSEngine(s, p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func qsTestImages(t *testing.T, n int) []QSImage {
	t.Helper()
	return QSImagesOfPairs(spyTestPairs(t, n))
}

// qsCheckAdvantages recomputes each group's GRPO advantages from its rewards.
func qsCheckAdvantages(t *testing.T, e *QSEngine, groups []QSGroup) {
	t.Helper()
	for _, g := range groups {
		want, zero, err := optim.GroupAdvantages(g.Rewards, optim.AdvantageConfig{Estimator: optim.AdvGRPO, Eps: 1e-6, UnbiasedStd: true})
		if err != nil {
			t.Fatal(err)
		}
		if zero != g.ZeroStd || len(g.Advantages) != len(want) || len(g.Completions) != len(want) {
			t.Fatalf("group %s: zero std %v (want %v), %d advantages, %d completions, want %d", g.ID, g.ZeroStd, zero, len(g.Advantages), len(g.Completions), len(want))
		}
		for i := range want {
			if math.Abs(g.Advantages[i]-want[i]) > 1e-12 {
				t.Fatalf("group %s: advantage %d = %v, want %v", g.ID, i, g.Advantages[i], want[i])
			}
		}
	}
}

func qsJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestQSQuestionerStageScripted(t *testing.T) {
	e := qsTestEngine(t, nil)
	imgs := qsTestImages(t, 6)
	q := &countingPolicy{Policy: NewScriptedQSPolicy(1)}
	s := &countingPolicy{Policy: NewScriptedQSPolicy(2)}
	res, err := e.PlayQuestioner(context.Background(), q, s, imgs, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 6*4 || len(res.Groups) != 6 {
		t.Fatalf("%d records and %d groups, want 24 and 6", len(res.Records), len(res.Groups))
	}
	valid := 0
	rewards := map[float64]bool{}
	for i, r := range res.Records {
		if r.Slot != i/4 || r.Index != i%4 || r.ImageID != imgs[i/4].ID || r.Image != imgs[i/4].Path || r.Step != 3 {
			t.Fatalf("record %d: slot %d index %d image %s step %d", i, r.Slot, r.Index, r.ImageID, r.Step)
		}
		if r.Reward == nil || r.Advantage == nil {
			t.Fatalf("record %d is not scored", i)
		}
		rewards[*r.Reward] = true
		if !r.Valid {
			if *r.Reward != QSInvalidReward || r.Error == "" || len(r.Votes) != 0 {
				t.Fatalf("invalid record %d: reward %v, error %q, %d votes", i, *r.Reward, r.Error, len(r.Votes))
			}
			continue
		}
		valid++
		if len(r.Votes) != 10 {
			t.Fatalf("record %d: %d votes, want m = 10", i, len(r.Votes))
		}
		var answers []string
		for _, v := range r.Votes {
			if v.Answer != QSExtractAnswer(v.Text) {
				t.Fatalf("vote %q recorded as %q", v.Text, v.Answer)
			}
			answers = append(answers, v.Answer)
		}
		want, vote, err := QSQuestionerReward(r.Quick, answers)
		if err != nil {
			t.Fatal(err)
		}
		if *r.Reward != want || *r.Vote != *qsVoteRecord(vote) {
			t.Fatalf("record %d: reward %v vote %+v, the rules say %v %+v", i, *r.Reward, *r.Vote, want, vote)
		}
		g := res.Groups[r.Slot]
		if g.Rewards[r.Index] != *r.Reward || g.Advantages[r.Index] != *r.Advantage || g.Completions[r.Index].Text != r.Output {
			t.Fatalf("record %d does not match its group", i)
		}
	}
	if valid == 0 || valid == len(res.Records) || len(rewards) < 3 {
		t.Fatalf("%d valid of %d, rewards %v: the scripted game should produce every kind of question", valid, len(res.Records), rewards)
	}
	qsCheckAdvantages(t, e, res.Groups)
	// One call for all questions, one for all solver answers (the batch of the step).
	if q.calls != 1 || q.reqs != 6 || s.calls != 1 || s.reqs != valid {
		t.Fatalf("questioner %d calls/%d requests, solver %d/%d; want 1/6 and 1/%d", q.calls, q.reqs, s.calls, s.reqs, valid)
	}
	sum := res.Summary
	if sum.Questions != 24 || sum.Valid != valid || sum.Groups != 6 || sum.Samples != 24 || sum.Stage != StageQuestioner {
		t.Fatalf("summary %+v", sum)
	}
	if sum.QuestionerRewardMean != sum.RewardMean || sum.MeanConfidence <= 0 || sum.SolverAccuracy <= 0 || sum.SolverAccuracy >= 1 {
		t.Fatalf("summary %+v", sum)
	}

	// The same seeds replay the same step; another questioner seed plays another.
	again, err := e.PlayQuestioner(context.Background(), NewScriptedQSPolicy(1), NewScriptedQSPolicy(2), imgs, 3)
	if err != nil {
		t.Fatal(err)
	}
	if qsJSON(t, again.Records) != qsJSON(t, res.Records) {
		t.Fatal("the same seeds played a different step")
	}
	other, err := e.PlayQuestioner(context.Background(), NewScriptedQSPolicy(9), NewScriptedQSPolicy(2), imgs, 3)
	if err != nil {
		t.Fatal(err)
	}
	if qsJSON(t, other.Records) == qsJSON(t, res.Records) {
		t.Fatal("another seed played the same step")
	}
}

func TestQSSolverStageScripted(t *testing.T) {
	e := qsTestEngine(t, nil)
	imgs := qsTestImages(t, 12)
	questioner := &countingPolicy{Policy: &ScriptedQSPolicy{Seed: 1}} // always valid, honest
	prev := &countingPolicy{Policy: &ScriptedQSPolicy{Seed: 2, NoiseRate: 0.3, NoBoxRate: 0.05}}
	solver := &countingPolicy{Policy: NewScriptedQSPolicy(3)}
	res, err := e.PlaySolver(context.Background(), questioner, prev, solver, imgs, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 12 {
		t.Fatalf("%d records, want one question per image", len(res.Records))
	}
	var kept, dropped int
	for _, r := range res.Records {
		if !r.Valid {
			t.Fatalf("honest scripted questioner wrote an invalid question: %s", r.Error)
		}
		if r.Reward != nil || r.Vote != nil || r.Label == nil || len(r.Votes) != 10 {
			t.Fatalf("solver-stage record %+v", r)
		}
		want, err := QSPseudoLabel(qsAnswerStrings(r.Votes), 0.3, 0.8)
		if err != nil {
			t.Fatal(err)
		}
		if *r.Label != *qsLabelRecord(want) {
			t.Fatalf("label %+v, the rules say %+v", *r.Label, want)
		}
		if !r.Label.Keep {
			dropped++
			if len(r.Solver) != 0 {
				t.Fatalf("dropped question (confidence %v) was trained on", r.Label.Confidence)
			}
			continue
		}
		kept++
		if r.Label.Confidence < 0.3 || r.Label.Confidence > 0.8 || len(r.Solver) != 5 {
			t.Fatalf("kept question: confidence %v, %d solver answers", r.Label.Confidence, len(r.Solver))
		}
		for _, a := range r.Solver {
			want, _ := QSSolverReward(a.Text, r.Label.Label)
			if a.Reward != want {
				t.Fatalf("solver answer %q vs label %s: reward %v, want %v", a.Answer, r.Label.Label, a.Reward, want)
			}
		}
	}
	if kept == 0 || dropped == 0 {
		t.Fatalf("kept %d, dropped %d: the filter should both keep and drop at this noise", kept, dropped)
	}
	if len(res.Groups) != kept {
		t.Fatalf("%d groups for %d kept questions", len(res.Groups), kept)
	}
	qsCheckAdvantages(t, e, res.Groups)
	for _, g := range res.Groups {
		if g.Request.N != 5 || g.Request.Role != RoleSolver || !strings.Contains(g.Request.User, "Which of these") {
			t.Fatalf("group request %+v", g.Request)
		}
	}
	if questioner.calls != 1 || questioner.reqs != 12 || prev.calls != 1 || prev.reqs != 12 || solver.calls != 1 || solver.reqs != kept {
		t.Fatalf("calls: questioner %d/%d, previous %d/%d, solver %d/%d", questioner.calls, questioner.reqs, prev.calls, prev.reqs, solver.calls, solver.reqs)
	}
	sum := res.Summary
	if sum.Kept != kept || sum.KeptFraction != float64(kept)/12 || sum.Samples != 5*kept || sum.QuestionerRewardMean != 0 {
		t.Fatalf("summary %+v", sum)
	}
}

// qsFixedQuestion is a valid question with quick answer `quick`.
func qsFixedQuestion(quick string) string {
	return "A cube.\n<question>What colour is the cube? A) red B) blue C) green D) gray</question>\n<answer>" + quick + "</answer>"
}

// qsSeq answers sample k with the k-th completion.
func qsSeq(completions []string) func(k int) string {
	return func(k int) string { return completions[k] }
}

// TestQSRewardsThroughTheEngine plays games.md's test vectors through the engine.
func TestQSRewardsThroughTheEngine(t *testing.T) {
	cases := []struct {
		name     string
		question string
		boxes    func(int) string
		want     float64
	}{
		{"agree, c = 0.5", qsFixedQuestion("B"), qsSeq(qsBoxes("B", 5, "C", 3, QSNoAnswer, 2)), 0.5},
		{"agree, c = 0.9", qsFixedQuestion("B"), qsSeq(qsBoxes("B", 9, "A", 1)), 0.1},
		{"disagree", qsFixedQuestion("A"), qsSeq(qsBoxes("C", 8, "B", 2)), 0.4},
		{"majority None", qsFixedQuestion("A"), qsSeq(qsBoxes(QSNoAnswer, 6, "A", 4)), 0},
		{"missing D)", "<question>Q? A) x B) y C) z</question><answer>A</answer>", qsSeq(qsBoxes("A", 10)), -1},
	}
	e := qsTestEngine(t, func(s *QSSettings) { s.Questions = 1 })
	imgs := qsTestImages(t, 1)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := &spyFuncPolicy{text: func(Request, int) string { return c.question }}
			s := &spyFuncPolicy{text: func(_ Request, k int) string { return c.boxes(k) }}
			res, err := e.PlayQuestioner(context.Background(), q, s, imgs, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := *res.Records[0].Reward; math.Abs(got-c.want) > 1e-12 {
				t.Fatalf("reward %v, want %v", got, c.want)
			}
		})
	}

	labels := []struct {
		name   string
		boxes  func(int) string
		label  string
		conf   float64
		keep   bool
		groups int
	}{
		{"kept", qsSeq(qsBoxes("A", 6, "B", 2, QSNoAnswer, 2)), "A", 0.6, true, 1},
		{"too sure", qsSeq(qsBoxes("A", 9, "B", 1)), "A", 0.9, false, 0},
		{"too unsure", qsSeq(qsBoxes("A", 2, "B", 2, "C", 1, QSNoAnswer, 5)), "A", 0.2, false, 0},
	}
	for _, c := range labels {
		t.Run(c.name, func(t *testing.T) {
			q := &spyFuncPolicy{text: func(Request, int) string { return qsFixedQuestion("B") }}
			prev := &spyFuncPolicy{text: func(_ Request, k int) string { return c.boxes(k) }}
			cur := &spyFuncPolicy{text: func(_ Request, k int) string {
				return []string{`\boxed{A}`, `\boxed{(a)}`, `\boxed{B}`, "no", `\boxed{A}`}[k]
			}}
			res, err := e.PlaySolver(context.Background(), q, prev, cur, imgs, 0)
			if err != nil {
				t.Fatal(err)
			}
			l := res.Records[0].Label
			if l.Label != c.label || math.Abs(l.Confidence-c.conf) > 1e-12 || l.Keep != c.keep || len(res.Groups) != c.groups {
				t.Fatalf("label %+v with %d groups, want %s %v keep=%v", *l, len(res.Groups), c.label, c.conf, c.keep)
			}
			if c.keep {
				if got := res.Groups[0].Rewards; fmt.Sprint(got) != "[1 1 0 0 1]" {
					t.Fatalf("solver rewards %v, want [1 1 0 0 1]", got)
				}
			}
		})
	}
}

type qsErrPolicy struct{ short bool }

func (p qsErrPolicy) Complete(_ context.Context, reqs []Request) ([][]Completion, error) {
	if p.short {
		return make([][]Completion, len(reqs)), nil // no completions at all
	}
	return nil, errors.New("backend down")
}

func TestQSEngineBadInput(t *testing.T) {
	e := qsTestEngine(t, nil)
	imgs := qsTestImages(t, 2)
	ok := NewScriptedQSPolicy(1)
	ctx := context.Background()
	if _, err := e.PlayQuestioner(ctx, ok, ok, nil, 0); err == nil {
		t.Error("no images accepted")
	}
	if _, err := e.PlayQuestioner(ctx, ok, ok, []QSImage{{ID: "x"}}, 0); err == nil {
		t.Error("image without a path accepted")
	}
	for _, bad := range []Policy{qsErrPolicy{}, qsErrPolicy{short: true}, nil} {
		if _, err := e.PlayQuestioner(ctx, bad, ok, imgs, 0); err == nil {
			t.Errorf("questioner %#v accepted", bad)
		}
		if _, err := e.PlayQuestioner(ctx, ok, bad, imgs, 0); err == nil {
			t.Errorf("solver %#v accepted", bad)
		}
		if _, err := e.PlaySolver(ctx, &ScriptedQSPolicy{Seed: 1}, bad, ok, imgs, 0); err == nil {
			t.Errorf("previous solver %#v accepted", bad)
		}
	}
	// The scripted policy refuses requests that are not this game's.
	if _, err := ok.Complete(ctx, []Request{{Role: RoleSolver, N: 1}}); err == nil {
		t.Error("scripted qs policy answered a request without truth")
	}
	if _, err := ok.Complete(ctx, []Request{{Role: RoleSpy, N: 1, Truth: &QSTruth{}}}); err == nil {
		t.Error("scripted qs policy answered a spy request")
	}
	for _, mutate := range []func(*QSSettings){
		func(s *QSSettings) { s.Questions = 0 },
		func(s *QSSettings) { s.SolverVotes = 0 },
		func(s *QSSettings) { s.LabelVotes = -1 },
		func(s *QSSettings) { s.SolverSamples = 0 },
		func(s *QSSettings) { s.MinConfidence = 0.9 },
		func(s *QSSettings) { s.MaxConfidence = 1.5 },
		func(s *QSSettings) { s.AdvEps = math.NaN() },
		func(s *QSSettings) { s.Answer.Temperature = -1 },
		func(s *QSSettings) { s.Question.MaxTokens = -1 },
	} {
		s := DefaultQSSettings()
		mutate(&s)
		if _, err := NewQSEngine(s, e.Prompts); err == nil {
			t.Errorf("settings %+v accepted", s)
		}
	}
	if _, err := NewQSEngine(DefaultQSSettings(), nil); err == nil {
		t.Error("engine without prompts accepted")
	}
}

// FuzzQSStages plays both stages with arbitrary Questioner and Solver text: nothing panics, and
// every reward is in the rules' range ({-1} U [0, 0.5] for questions, {0, 1} for answers).
func FuzzQSStages(f *testing.F) {
	f.Add(qsFixedQuestion("B"), `\boxed{B}`, `\boxed{C}`)
	f.Add("<question>Q? A) 1 B) 2 C) 3 D) 4</question><answer>(d)</answer>", `\boxed{\text{D}}`, "no box")
	f.Add("<question>A) B) C) D)</question><answer>A</answer>", `\boxed{`, `\boxed{{A}}`)
	f.Add("", "", "")
	e := qsTestEngine(f, func(s *QSSettings) { s.Questions, s.SolverVotes, s.LabelVotes, s.SolverSamples = 2, 3, 3, 2 })
	imgs := []QSImage{{ID: "x", Path: "x.png"}}
	f.Fuzz(func(t *testing.T, question, a1, a2 string) {
		q := &spyFuncPolicy{text: func(Request, int) string { return question }}
		s := &spyFuncPolicy{text: func(_ Request, k int) string { return []string{a1, a2}[k%2] }}
		res, err := e.PlayQuestioner(context.Background(), q, s, imgs, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Records {
			if x := *r.Reward; x != -1 && (x < 0 || x > 0.5) {
				t.Fatalf("questioner reward %v", x)
			}
		}
		res, err = e.PlaySolver(context.Background(), q, s, s, imgs, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range res.Groups {
			for _, x := range g.Rewards {
				if x != 0 && x != 1 {
					t.Fatalf("solver reward %v", x)
				}
			}
		}
	})
}
