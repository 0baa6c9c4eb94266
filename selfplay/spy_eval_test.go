// The evaluation tests live outside package selfplay because they check the tallies with package
// report's Wilson interval, and report imports selfplay.
package selfplay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vzlocal/vzlocal/data"
	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/llm/testmodel"
	"github.com/vzlocal/vzlocal/lora"
	"github.com/vzlocal/vzlocal/report"
	"github.com/vzlocal/vzlocal/selfplay"
)

// evalPairsDir writes n small pairs (index.jsonl, PNG images) whose modified image replaces two of
// five objects with ones the original does not have, so a spy that names one gives itself away.
func evalPairsDir(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	shapes := []string{"cube", "sphere", "cylinder"}
	colors := []string{"red", "blue", "green", "gray", "purple", "cyan", "yellow", "brown"}
	var index strings.Builder
	for i := range n {
		id := fmt.Sprintf("%06d", i)
		p := data.Pair{ID: id, Kind: data.KindCLEVR, Original: id + ".original.png", Modified: id + ".modified.png",
			Width: 16, Height: 12, Seed: int64(i)}
		for k := range 5 {
			d := fmt.Sprintf("large %s %s number %d", colors[(i+k)%8], shapes[(i+k)%3], k)
			it := data.Item{Original: d, Modified: d}
			if k == 1 || k == 3 {
				it.Modified = fmt.Sprintf("small %s %s number %d", colors[(i+k+3)%8], shapes[(i+k+1)%3], k)
				p.Changes = append(p.Changes, data.Change{Kind: "replace", Before: d, After: it.Modified,
					Box: data.Box{X0: 2 * k, Y0: 2, X1: 2*k + 2, Y1: 4}})
			}
			p.Items = append(p.Items, it)
		}
		selfplay.WriteSolidPNG(t, filepath.Join(dir, p.Original), 16, 12, color.RGBA{uint8(7 * i), 100, 100, 255})
		selfplay.WriteSolidPNG(t, filepath.Join(dir, p.Modified), 16, 12, color.RGBA{uint8(7 * i), 180, 100, 255})
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		index.Write(b)
		index.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, data.IndexFile), []byte(index.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func evalPairs(t *testing.T, n int) []*data.Pair {
	t.Helper()
	pairs, err := data.ReadDir(evalPairsDir(t, n))
	if err != nil {
		t.Fatal(err)
	}
	return pairs
}

func evalConfig(t *testing.T, pairs []*data.Pair, games int, mutate func(*selfplay.SpySettings)) selfplay.SpyEvalConfig {
	t.Helper()
	s := selfplay.DefaultSpySettings()
	s.Decision, s.Seed, s.BlankDir = selfplay.DecisionVote, 5, t.TempDir()
	if mutate != nil {
		mutate(&s)
	}
	prompts, err := selfplay.LoadSpyPrompts("")
	if err != nil {
		t.Fatal(err)
	}
	return selfplay.SpyEvalConfig{Settings: s, Prompts: prompts, Pairs: pairs, HeldOut: 0.3, SplitSeed: 1, Games: games}
}

func runEval(t *testing.T, cfg selfplay.SpyEvalConfig, cand, ref selfplay.Policy) *selfplay.SpyEvalResult {
	t.Helper()
	ev, err := selfplay.NewSpyEvaluator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ev.Run(context.Background(), cand, ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range res.Games {
		if err := selfplay.CheckSpyGame(g); err != nil {
			t.Error(err)
		}
	}
	return res
}

// record is the eval.jsonl record of a result, through package report's tally.
func record(res *selfplay.SpyEvalResult) report.EvalRecord {
	var w report.WinTally
	res.Tally(w.Add)
	return w.Record(0)
}

func wilson(wins, games int) (float64, float64) {
	return report.Tally{Wins: wins, Games: games}.Interval()
}

// seatLog is a policy that answers from a rule and records which seats it played.
type seatLog struct {
	name  string
	vote  func(t *selfplay.SpyTruth, r selfplay.Request) string // decision turns
	seats map[[2]int]string                                     // (game, player) -> role played
}

func (p *seatLog) Complete(_ context.Context, reqs []selfplay.Request) ([][]selfplay.Completion, error) {
	out := make([][]selfplay.Completion, len(reqs))
	for i, r := range reqs {
		t := r.Truth.(*selfplay.SpyTruth)
		p.seats[[2]int{t.Game, r.Player}] = r.Role
		text := fmt.Sprintf("%s speaks as player %d in round %d.\n\\boxed{A scene.}", p.name, r.Player, t.Prompt.Round)
		if r.Role == selfplay.RoleVoter || r.Role == selfplay.RoleObserver {
			text = p.name + " thinks it over carefully.\n" + p.vote(t, r)
		}
		for range r.N {
			out[i] = append(out[i], selfplay.Completion{Text: text})
		}
	}
	return out, nil
}

// TestSpyEvalTallies plays games whose outcome is fixed by rule and checks the routing of every
// seat, the per-side win tallies, their Wilson intervals and the decision and length statistics.
func TestSpyEvalTallies(t *testing.T) {
	// The candidate votes for the spy unless the game id is a multiple of 5 (then N/A); the
	// reference votes for the spy in games whose id is a multiple of 6, else an invalid answer.
	cand := &seatLog{name: "cand", seats: map[[2]int]string{}, vote: func(t *selfplay.SpyTruth, _ selfplay.Request) string {
		if t.Game%5 == 0 {
			return `\boxed{N/A}`
		}
		return fmt.Sprintf(`\boxed{%d}`, t.Spy)
	}}
	ref := &seatLog{name: "reference", seats: map[[2]int]string{}, vote: func(t *selfplay.SpyTruth, _ selfplay.Request) string {
		if t.Game%6 == 0 {
			return fmt.Sprintf(`\boxed{%d}`, t.Spy)
		}
		return `\boxed{maybe}`
	}}
	const games = 24
	cfg := evalConfig(t, evalPairs(t, 30), games, func(s *selfplay.SpySettings) { s.Players, s.Rounds = 4, 2 })
	res := runEval(t, cfg, cand, ref)
	checkAuthors(t, res, "cand")

	var wantSpy, wantCiv report.Tally
	var wantCand, wantRef selfplay.SpyEvalPlayer
	for id := range games {
		spy := selfplay.SpyForGame(cfg.Settings.Seed, id, 4)
		for p := 1; p <= 4; p++ {
			c, r := cand.seats[[2]int{id, p}], ref.seats[[2]int{id, p}]
			candSeat := (p == spy) == (id%2 == 0)
			if candSeat && (c == "" || r != "") || !candSeat && (r == "" || c != "") {
				t.Fatalf("game %d player %d (spy %d): candidate played %q, reference %q", id, p, spy, c, r)
			}
		}
		if id%2 == 0 { // candidate is the spy; the reference civilians vote
			wantSpy.Games++
			if id%6 != 0 {
				wantSpy.Wins++
			}
			wantRef.Decisions += 3
			if id%6 == 0 {
				wantRef.Correct += 3
			} else {
				wantRef.Invalid += 3
			}
		} else { // candidate civilians vote
			wantCiv.Games++
			wantCand.Decisions += 3
			if id%5 != 0 {
				wantCiv.Wins++
				wantCand.Correct += 3
			} else {
				wantCand.Abstained += 3
			}
		}
	}
	rec := record(res)
	if err := rec.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		side string
		want report.Tally
	}{{selfplay.SpyEvalSpy, wantSpy}, {selfplay.SpyEvalCivilians, wantCiv}} {
		got := rec.Roles[c.side]
		if got.Games != c.want.Games || got.Wins != c.want.Wins {
			t.Errorf("%s: %d/%d, want %d/%d", c.side, got.Wins, got.Games, c.want.Wins, c.want.Games)
		}
		lo, hi, err := report.Wilson(c.want.Wins, c.want.Games, report.Z95)
		if err != nil || math.Abs(got.Low-lo) > 1e-12 || math.Abs(got.High-hi) > 1e-12 {
			t.Errorf("%s: interval [%v, %v], want Wilson [%v, %v] (%v)", c.side, got.Low, got.High, lo, hi, err)
		}
		if w, n := res.Wins(c.side); w != c.want.Wins || n != c.want.Games {
			t.Errorf("%s: Wins says %d/%d", c.side, w, n)
		}
	}
	if rec.Games != games || rec.Wins != wantSpy.Wins+wantCiv.Wins {
		t.Errorf("overall %d/%d, want %d/%d", rec.Wins, rec.Games, wantSpy.Wins+wantCiv.Wins, games)
	}
	// 8 of the 12 spy games go uncaught (even ids that are not multiples of 6); 10 of the 12
	// civilian games catch the spy (odd ids but 5 and 15).
	if wantSpy.Wins != 8 || wantCiv.Wins != 10 {
		t.Fatalf("test arithmetic: %v %v", wantSpy, wantCiv)
	}
	// Known value: the Wilson 95% interval of 18/24 is [0.55101, 0.88001].
	if math.Abs(rec.Low-0.55101) > 1e-4 || math.Abs(rec.High-0.88001) > 1e-4 {
		t.Errorf("overall interval [%.5f, %.5f], want [0.55101, 0.88001]", rec.Low, rec.High)
	}
	for _, c := range []struct {
		name      string
		got, want selfplay.SpyEvalPlayer
	}{{"candidate", res.Candidate, wantCand}, {"reference", res.Reference, wantRef}} {
		g, w := c.got, c.want
		if g.Decisions != w.Decisions || g.Correct != w.Correct || g.Abstained != w.Abstained || g.Invalid != w.Invalid {
			t.Errorf("%s decisions %+v, want %+v", c.name, g, w)
		}
	}
	// Completions: each side writes 2 clues in its spy games and 6 clues + 3 votes in its civilian
	// games: the same count on both sides.
	if want := 12*2 + 12*9; res.Candidate.Completions != want || res.Reference.Completions != want {
		t.Errorf("completions %d and %d, want %d each", res.Candidate.Completions, res.Reference.Completions, want)
	}
	if res.Candidate.Tokens != 0 || res.Candidate.MeanChars() <= 0 {
		t.Errorf("lengths: %d tokens (scripted: none), %.1f chars", res.Candidate.Tokens, res.Candidate.MeanChars())
	}
	sum := res.Summary("cand", "reference", wilson)
	for _, want := range []string{"24 games", "the civilians vote", "75.0%", "as the spy", "66.7%", "83.3%", "decision accuracy", "n/a"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	if n := strings.Count(sum, "\n"); n > 24 {
		t.Errorf("summary is %d lines, want one screen", n)
	}
}

// checkAuthors checks that the policy that wrote each sample (named at the start of its text) is
// the one the result counts it for: the candidate in the spy's seat of even games and in the
// civilians' seats of odd games, the reference elsewhere, the observer included.
func checkAuthors(t *testing.T, res *selfplay.SpyEvalResult, cand string) {
	t.Helper()
	var candSamples int
	for _, g := range res.Games {
		for _, x := range g.Samples {
			want := x.Player != 0 && (x.Player == g.Spy) == (g.ID%2 == 0)
			if got := strings.HasPrefix(x.Text, cand); got != want {
				t.Fatalf("game %d, player %d (%s, spy %d): written by the candidate %v, want %v", g.ID, x.Player, x.Role, g.Spy, got, want)
			}
			if want {
				candSamples++
			}
		}
	}
	if candSamples != res.Candidate.Completions {
		t.Fatalf("the candidate wrote %d samples, the result counts %d", candSamples, res.Candidate.Completions)
	}
}

// TestSpyEvalObserverIsReference: in observer mode the reference judges every game, whichever side
// the candidate plays, and the candidate makes no decisions.
func TestSpyEvalObserverIsReference(t *testing.T) {
	vote := func(t *selfplay.SpyTruth, _ selfplay.Request) string { return fmt.Sprintf(`\boxed{%d}`, t.Spy) }
	cand := &seatLog{name: "cand", seats: map[[2]int]string{}, vote: vote}
	ref := &seatLog{name: "reference", seats: map[[2]int]string{}, vote: vote}
	cfg := evalConfig(t, evalPairs(t, 30), 8, func(s *selfplay.SpySettings) {
		s.Players, s.Rounds, s.Decision, s.ObserverSamples = 3, 1, selfplay.DecisionObserver, 2
	})
	res := runEval(t, cfg, cand, ref)
	checkAuthors(t, res, "cand")
	for id := range 8 {
		if cand.seats[[2]int{id, 0}] != "" || ref.seats[[2]int{id, 0}] != selfplay.RoleObserver {
			t.Fatalf("game %d: observer played by candidate %q, reference %q", id, cand.seats[[2]int{id, 0}], ref.seats[[2]int{id, 0}])
		}
	}
	if res.Candidate.Decisions != 0 || res.Reference.Decisions != 8*2 || res.Reference.Correct != 8*2 {
		t.Fatalf("decisions: candidate %+v, reference %+v", res.Candidate, res.Reference)
	}
	// A judge that always finds the spy: the candidate loses every spy game, wins every civilian one.
	if w, n := res.Wins(selfplay.SpyEvalSpy); w != 0 || n != 4 {
		t.Errorf("as the spy %d/%d, want 0/4", w, n)
	}
	if w, n := res.Wins(selfplay.SpyEvalCivilians); w != 4 || n != 4 {
		t.Errorf("as the civilians %d/%d, want 4/4", w, n)
	}
}

// TestSpyEvalStrongBeatsWeak: a scripted player that never slips and reads the clues beats a
// careless one clearly, from both sides; in observer mode the reference judges every game.
func TestSpyEvalStrongBeatsWeak(t *testing.T) {
	strong := &selfplay.ScriptedSpyPolicy{Seed: 3, SlipRate: 0, GuessRate: 1}
	weak := selfplay.NewCarelessSpyPolicy(4)
	pairs := evalPairs(t, 60)
	cfg := evalConfig(t, pairs, 60, nil)
	res := runEval(t, cfg, strong, weak)
	rec := record(res)
	t.Logf("strong vs weak:\n%s", res.Summary("strong", "weak", wilson))
	if rec.WinRate <= 0.8 || rec.Low <= 0.5 {
		t.Errorf("strong wins %.2f [%.2f, %.2f], want > 0.8 with the interval above 0.5", rec.WinRate, rec.Low, rec.High)
	}
	if civ := rec.Roles[selfplay.SpyEvalCivilians]; civ.WinRate < 0.9 {
		t.Errorf("strong civilians catch a careless spy in %.2f of games", civ.WinRate)
	}
	if res.Candidate.Accuracy() <= res.Reference.Accuracy() {
		t.Errorf("strong voters' accuracy %.2f is not above the careless ones' %.2f", res.Candidate.Accuracy(), res.Reference.Accuracy())
	}

	// The other way round, the careless player loses clearly.
	rev := record(runEval(t, cfg, weak, strong))
	if rev.High >= 0.5 {
		t.Errorf("weak vs strong: %.2f [%.2f, %.2f], want the interval below 0.5", rev.WinRate, rev.Low, rev.High)
	}

	// Observer mode: the strong reference judges, so the careless candidate still loses, and only
	// the reference makes decisions.
	obs := evalConfig(t, pairs, 40, func(s *selfplay.SpySettings) { s.Decision, s.ObserverSamples = selfplay.DecisionObserver, 3 })
	ores := runEval(t, obs, weak, strong)
	orec := record(ores)
	if ores.Candidate.Decisions != 0 || ores.Reference.Decisions != 40*3 {
		t.Errorf("observer mode: candidate made %d decisions, reference %d; want 0 and %d", ores.Candidate.Decisions, ores.Reference.Decisions, 40*3)
	}
	if orec.High >= 0.5 {
		t.Errorf("observer mode, weak vs strong judge: %.2f [%.2f, %.2f], want the interval below 0.5", orec.WinRate, orec.Low, orec.High)
	}
	if !strings.Contains(ores.Summary("weak", "strong", wilson), "the reference observes and judges") {
		t.Error("summary does not say who judges")
	}
}

// TestSpyEvalHeldOutSplit: the evaluation plays only held-out pairs, the split is disjoint from the
// training pairs, covers them all, and is the same across runs and read orders.
func TestSpyEvalHeldOutSplit(t *testing.T) {
	dir := evalPairsDir(t, 50)
	read := func() []*data.Pair {
		p, err := data.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ids := func(ps []*data.Pair) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	pairs := read()
	train, held := selfplay.SplitSpyPairs(pairs, 1, 0.3)
	if len(train)+len(held) != len(pairs) || len(held) == 0 || len(train) == 0 {
		t.Fatalf("split %d + %d of %d pairs", len(train), len(held), len(pairs))
	}
	inTrain := map[string]bool{}
	for _, p := range train {
		inTrain[p.ID] = true
	}
	for _, p := range held {
		if inTrain[p.ID] || !data.HeldOut(p.ID, 1, 0.3) {
			t.Fatalf("pair %s is held out and trained on", p.ID)
		}
	}
	shuffled := read()
	rand.New(rand.NewPCG(9, 9)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	_, held2 := selfplay.SplitSpyPairs(shuffled, 1, 0.3)
	if fmt.Sprint(ids(held)) != fmt.Sprint(ids(held2)) {
		t.Fatalf("read order changed the held-out set: %v vs %v", ids(held), ids(held2))
	}
	if _, other := selfplay.SplitSpyPairs(pairs, 2, 0.3); fmt.Sprint(ids(other)) == fmt.Sprint(ids(held)) {
		t.Fatal("another seed gave the same held-out set")
	}

	// Two evaluators, one on the shuffled list, play the same games on held-out pairs only.
	cfg := evalConfig(t, pairs, 20, nil)
	a := runEval(t, cfg, selfplay.NewScriptedSpyPolicy(1), selfplay.NewCarelessSpyPolicy(2))
	cfg.Pairs = shuffled
	b := runEval(t, cfg, selfplay.NewScriptedSpyPolicy(1), selfplay.NewCarelessSpyPolicy(2))
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Fatal("the same evaluation played twice (pairs read in another order) gave different results")
	}
	for _, o := range a.Outcomes {
		if inTrain[o.Pair] {
			t.Fatalf("game %d played training pair %s", o.Game, o.Pair)
		}
	}
}

// TestSpyEvalBadInput: every bad set-up is a clear error, not a panic or a silent default.
func TestSpyEvalBadInput(t *testing.T) {
	pairs := evalPairs(t, 3)
	var few []*data.Pair // pairs none of which is held out at 1%
	for _, p := range pairs {
		if !data.HeldOut(p.ID, 1, 0.01) {
			few = append(few, p)
		}
	}
	if len(few) == 0 {
		t.Fatal("test set-up: every pair is held out at 1%")
	}
	cases := []struct {
		name    string
		mutate  func(*selfplay.SpyEvalConfig)
		problem string
	}{
		{"odd games", func(c *selfplay.SpyEvalConfig) { c.Games = 7 }, "7 games: want an even number"},
		{"no games", func(c *selfplay.SpyEvalConfig) { c.Games = 0 }, "want an even number"},
		{"no held-out pairs", func(c *selfplay.SpyEvalConfig) { c.Pairs, c.HeldOut = few, 0.01 }, "is held out"},
		{"no pairs", func(c *selfplay.SpyEvalConfig) { c.Pairs = nil }, "none of the 0 pairs is held out"},
		{"held-out fraction 0", func(c *selfplay.SpyEvalConfig) { c.HeldOut = 0 }, "held-out fraction 0"},
		{"bad settings", func(c *selfplay.SpyEvalConfig) { c.Settings.Players = 2 }, "players = 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := evalConfig(t, pairs, 4, nil)
			cfg.HeldOut = 1
			c.mutate(&cfg)
			_, err := selfplay.NewSpyEvaluator(cfg)
			if err == nil || !strings.Contains(err.Error(), c.problem) {
				t.Fatalf("error %v, want one containing %q", err, c.problem)
			}
		})
	}

	ev, err := selfplay.NewSpyEvaluator(func() selfplay.SpyEvalConfig { c := evalConfig(t, pairs, 2, nil); c.HeldOut = 1; return c }())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ev.Run(context.Background(), selfplay.NewScriptedSpyPolicy(1), nil); err == nil {
		t.Error("no reference policy accepted")
	}

	run := t.TempDir()
	if _, err := selfplay.SpyEvalAdapterFile(run); err == nil || !strings.Contains(err.Error(), "has no adapter.gguf") {
		t.Errorf("run folder without adapter: %v", err)
	}
	if _, err := selfplay.SpyEvalAdapterFile(filepath.Join(run, "nope.gguf")); err == nil {
		t.Error("missing adapter file accepted")
	}
}

// TestSpyEvalAdapterForAnotherModel: an adapter trained on another base is refused with the
// reason, before any game is played; a run folder resolves to its adapter.gguf.
func TestSpyEvalAdapterForAnotherModel(t *testing.T) {
	m := tinyModel(t)
	other, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "internvl", Seed: 2, NoMMProj: true})
	if err != nil {
		t.Fatal(err)
	}
	mine, err := lora.ReadConfig(m.path)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := lora.ReadConfig(other.Text)
	if err != nil {
		t.Fatal(err)
	}
	run := t.TempDir()
	writeAdapter(t, mine, filepath.Join(run, "adapter.gguf"))
	foreign := filepath.Join(t.TempDir(), "qwen2.gguf")
	writeAdapter(t, theirs, foreign)

	_, err = selfplay.LoadSpyEvalAdapter(m.Model, foreign)
	if err == nil || !strings.Contains(err.Error(), foreign) || !strings.Contains(err.Error(), `made for architecture "qwen2"`) {
		t.Fatalf("adapter for another model: %v", err)
	}
	a, err := selfplay.LoadSpyEvalAdapter(m.Model, run)
	if err != nil || a == nil || a.Path() != filepath.Join(run, "adapter.gguf") {
		t.Fatalf("run folder: adapter %v, %v", a, err)
	}
	if b, err := selfplay.LoadSpyEvalAdapter(m.Model, selfplay.SpyEvalBase); err != nil || b != nil {
		t.Fatalf("base: %v, %v", b, err)
	}
}

func writeAdapter(t *testing.T, cfg lora.Config, path string) {
	t.Helper()
	a, err := lora.NewAdapter(cfg, lora.AdapterOptions{Rank: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WriteGGUF(path, lora.TypeF32); err != nil {
		t.Fatal(err)
	}
}

// quiet drops llama.cpp's per-call debug lines for one test: hundreds of games would spend
// their time logging.
func quiet(t *testing.T) {
	lvl := zerolog.GlobalLevel()
	zerolog.SetGlobalLevel(zerolog.InfoLevel)
	t.Cleanup(func() { zerolog.SetGlobalLevel(lvl) })
}

type tinyLoaded struct {
	*llm.Model
	path string
}

// tinyModel loads the tiny llava-style test model with one thread (the CI box has 2 cores).
func tinyModel(t *testing.T) tinyLoaded {
	t.Helper()
	files, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "llava", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	m, err := llm.Load(files.Text, files.MMProj, llm.Options{Threads: 1, ContextSize: 4096, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return tinyLoaded{Model: m, path: files.Text}
}

// TestSpyEvalTinyModelAgainstItself plays the tiny random-weight model against itself (the base on
// both sides, one model in memory). Its completions are byte noise, so nearly every vote is
// invalid and the spy is rarely caught: the candidate then wins its spy games and loses its
// civilian games. What makes the test meaningful is symmetry: both sides are the same model, so
// the candidate's spy games and the reference's spy games (the candidate's civilian games seen
// from the other side) must agree within their intervals, every statistic of the two sides must
// match in count, and the overall interval must contain 50%. A routing bug (a side playing the
// wrong seats, or the observer going to the candidate) breaks the counts.
func TestSpyEvalTinyModelAgainstItself(t *testing.T) {
	quiet(t)
	m := tinyModel(t)
	pairs := evalPairs(t, 12)
	cfg := evalConfig(t, pairs, 24, func(s *selfplay.SpySettings) {
		s.Players, s.Rounds = 3, 1
		s.Clue.MaxTokens, s.Decide.MaxTokens = 6, 6
	})
	cfg.HeldOut, cfg.Batch = 0.5, 8
	ev, err := selfplay.NewSpyEvaluator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ev.RunLlama(context.Background(), m.Model, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := record(res)
	t.Logf("tiny model against itself:\n%s", res.Summary("base", "base", wilson))
	if rec.Games != 24 || !(rec.Low <= 0.5 && 0.5 <= rec.High) {
		t.Errorf("win rate %.3f [%.3f, %.3f] over %d games; want an interval containing 0.5", rec.WinRate, rec.Low, rec.High, rec.Games)
	}
	// The candidate's spy games against the reference's spy games.
	spy := rec.Roles[selfplay.SpyEvalSpy]
	civ := rec.Roles[selfplay.SpyEvalCivilians]
	refSpyWins := civ.Games - civ.Wins
	rlo, rhi := wilson(refSpyWins, civ.Games)
	if spy.High < rlo || rhi < spy.Low {
		t.Errorf("candidate spy wins %d/%d, reference spy wins %d/%d: the same model should win alike",
			spy.Wins, spy.Games, refSpyWins, civ.Games)
	}
	c, r := res.Candidate, res.Reference
	if c.Completions != r.Completions || c.Decisions != r.Decisions || c.Decisions != 12*2 {
		t.Errorf("candidate %+v and reference %+v: want equal counts, 24 decisions each", c, r)
	}
	if c.Tokens == 0 || r.Tokens == 0 || math.Abs(c.MeanTokens()-r.MeanTokens()) > 2 {
		t.Errorf("mean tokens %.2f vs %.2f: want both measured and close", c.MeanTokens(), r.MeanTokens())
	}
	// Fixed seeds: the same adapters replay the same evaluation, so steps are comparable. Game i
	// depends only on i and its batch, so an evaluation of the first batch alone replays it.
	cfg.Games = cfg.Batch
	first, err := selfplay.NewSpyEvaluator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := first.RunLlama(context.Background(), m.Model, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range again.Games {
		if res.Games[i].PairID != g.PairID || res.Games[i].Spy != g.Spy {
			t.Fatalf("game %d: pair %s spy %d, then pair %s spy %d", i, res.Games[i].PairID, res.Games[i].Spy, g.PairID, g.Spy)
		}
		for k, s := range g.Samples {
			if s.Text != res.Games[i].Samples[k].Text {
				t.Fatalf("game %d sample %d differs between two evaluations", g.ID, k)
			}
		}
	}
}
