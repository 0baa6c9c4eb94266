package selfplay

import (
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSpyScriptedGameDeterministic(t *testing.T) {
	pairs := spyTestPairs(t, 4)
	e := spyTestEngine(t, nil)
	a := playScored(t, e, NewScriptedSpyPolicy(1), pairs, 0)
	b := playScored(t, e, NewScriptedSpyPolicy(1), pairs, 0)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Fatal("two plays with the same seeds differ")
	}
	e2 := spyTestEngine(t, func(s *SpySettings) { s.Seed = 8 })
	c := playScored(t, e2, NewScriptedSpyPolicy(2), pairs, 0)
	jc, _ := json.Marshal(c)
	if string(ja) == string(jc) {
		t.Fatal("other seeds play the same games")
	}
	for _, g := range a {
		if g.Spy < 1 || g.Spy > 4 || g.Spy != SpyForGame(7, g.ID, 4) {
			t.Errorf("game %d: spy %d, want SpyForGame = %d", g.ID, g.Spy, SpyForGame(7, g.ID, 4))
		}
	}
}

func TestSpyForGameUniform(t *testing.T) {
	counts := make([]int, 5)
	for id := range 4000 {
		counts[SpyForGame(3, id, 4)]++
	}
	for p := 1; p <= 4; p++ {
		// Binomial(4000, 1/4): mean 1000, sd 27; 6 sd is never reached by a uniform draw.
		if counts[p] < 840 || counts[p] > 1160 {
			t.Errorf("player %d is the spy in %d of 4000 games, want about 1000", p, counts[p])
		}
	}
	if counts[0] != 0 {
		t.Errorf("player 0 chosen as spy %d times", counts[0])
	}
}

func TestSpyBatchingAcrossGames(t *testing.T) {
	pairs := spyTestPairs(t, 3)
	e := spyTestEngine(t, nil)
	pol := &countingPolicy{Policy: NewScriptedSpyPolicy(1)}
	together := playScored(t, e, pol, pairs, 10)
	// One call per turn (R*N) plus one for the decision stage, each with one request per game.
	if want := 2*4 + 1; pol.calls != want || pol.reqs != want*3 {
		t.Errorf("%d calls with %d requests, want %d calls with %d", pol.calls, pol.reqs, want, want*3)
	}
	// A game plays the same whichever batch it is in.
	for i, p := range pairs {
		alone := playScored(t, e, NewScriptedSpyPolicy(1), pairs[i:i+1], 10+i)
		for k, x := range alone[0].Samples {
			y := together[i].Samples[k]
			if x.Text != y.Text || x.Prompt != y.Prompt {
				t.Fatalf("pair %s sample %d differs between batched and alone play", p.ID, k)
			}
		}
	}
}

// checkSpyRules fails the test when a recorded game breaks the rules.
func checkSpyRules(t *testing.T, g *SpyGame) {
	t.Helper()
	if err := CheckSpyGame(g); err != nil {
		t.Error(err)
	}
}

// TestCheckSpyGameCatchesViolations breaks a correct game in each way the checker must notice.
func TestCheckSpyGameCatchesViolations(t *testing.T) {
	e := spyTestEngine(t, nil)
	fresh := func() *SpyGame {
		return playScored(t, e, NewScriptedSpyPolicy(3), spyTestPairs(t, 1), 0)[0]
	}
	if err := CheckSpyGame(fresh()); err != nil {
		t.Fatalf("a correct game fails: %v", err)
	}
	spyTurn := func(g *SpyGame) *SpySample { return g.Samples[g.Spy-1] }
	other := func(g *SpyGame) int { return g.Spy%g.Players + 1 }
	tests := []struct {
		name   string
		break_ func(g *SpyGame)
		want   string
	}{
		{"turn order", func(g *SpyGame) { g.Samples[0], g.Samples[1] = g.Samples[1], g.Samples[0] }, "out of order"},
		{"leaked reasoning", func(g *SpyGame) {
			last := g.Samples[g.Players*g.Rounds-1]
			last.Prompt += g.Samples[(last.Player)%g.Players].Reasoning
		}, "sees the private reasoning"},
		{"own reasoning hidden", func(g *SpyGame) {
			x := g.Samples[g.Players] // player 1, round 2
			x.Prompt = strings.ReplaceAll(x.Prompt, g.Samples[0].Reasoning, "")
		}, "not shown its own reasoning"},
		{"hidden clue", func(g *SpyGame) {
			x := g.Samples[g.Players*g.Rounds-1]
			x.Prompt = strings.ReplaceAll(x.Prompt, g.Samples[0].Clue, "")
		}, "not shown the clue"},
		{"spy image", func(g *SpyGame) { spyTurn(g).Image = g.Original }, "seeing"},
		{"civilian image", func(g *SpyGame) { g.Samples[other(g)-1].Image = g.SpyImage }, "seeing"},
		{"not zero-sum", func(g *SpyGame) { g.ClueRewards[0] += 0.01 }, "zero-sum"},
		{"tally", func(g *SpyGame) { g.Tally[0]++ }, "tally"},
		{"observer sees spy image", func(g *SpyGame) { g.Samples[len(g.Samples)-1].Image = g.SpyImage }, "want the original"},
	}
	for _, tt := range tests {
		g := fresh()
		tt.break_(g)
		err := CheckSpyGame(g)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestSpyGamesJSONLRules(t *testing.T) {
	for _, mode := range []string{DecisionObserver, DecisionVote} {
		t.Run(mode, func(t *testing.T) {
			e := spyTestEngine(t, func(s *SpySettings) { s.Decision = mode; s.VoteSamples = 2; s.Rounds = 3 })
			games := playScored(t, e, NewScriptedSpyPolicy(5), spyTestPairs(t, 6), 0)
			path := filepath.Join(t.TempDir(), "out", SpyGamesFile)
			if err := WriteSpyGames(path, games); err != nil {
				t.Fatal(err)
			}
			back, err := ReadSpyGames(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(back) != 6 {
				t.Fatalf("%d games read back, want 6", len(back))
			}
			caught := 0
			for _, g := range back {
				checkSpyRules(t, g)
				if g.SpyCaught {
					caught++
				}
				want := 8
				if mode == DecisionVote {
					want = 3 * 2
				}
				if n := len(SpySamplesOf([]*SpyGame{g}, StageDecision)); n != want {
					t.Errorf("game %d: %d decision samples, want %d", g.ID, n, want)
				}
			}
			t.Logf("%s: spy caught in %d of 6 games", mode, caught)
		})
	}
}

func TestSpyBlankSpyImage(t *testing.T) {
	e := spyTestEngine(t, func(s *SpySettings) { s.SpyImage = SpyImageBlank })
	games := playScored(t, e, NewScriptedSpyPolicy(1), spyTestPairs(t, 2), 0)
	for _, g := range games {
		checkSpyRules(t, g)
		if filepath.Dir(g.SpyImage) != e.Settings.BlankDir {
			t.Fatalf("spy image %s, want a blank image in %s", g.SpyImage, e.Settings.BlankDir)
		}
		f, err := os.Open(g.SpyImage)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() != 32 || b.Dy() != 24 {
			t.Errorf("blank image %v, want 32x24", b)
		}
		if r, gg, bb, _ := img.At(5, 5).RGBA(); r != 0xffff || gg != 0xffff || bb != 0xffff {
			t.Errorf("blank image is not white")
		}
	}
}

func TestSpyGarbageCompletions(t *testing.T) {
	garbage := []string{"", "}}}{{", "\\boxed{", "<answer>", "\xff\xfe\x00", strings.Repeat("x", 5000)}
	pol := &spyFuncPolicy{text: func(r Request, k int) string { return garbage[(r.Player+k)%len(garbage)] }}
	e := spyTestEngine(t, nil)
	games := playScored(t, e, pol, spyTestPairs(t, 2), 0)
	for _, g := range games {
		checkSpyRules(t, g)
		for _, x := range g.Samples {
			switch x.Stage {
			case StageClue:
				if x.Clue != NoClue || x.ClueOK {
					t.Errorf("garbage clue parsed as %q", x.Clue)
				}
				if x.Turn > 0 && !strings.Contains(x.Prompt, NoClue) {
					t.Errorf("later players are not shown the placeholder clue")
				}
			case StageDecision:
				if x.Vote.Kind != VoteInvalid || x.Reward != -1.5 || x.Advantage != 0 {
					t.Errorf("garbage vote: %+v reward %v advantage %v, want invalid -1.5 0", x.Vote, x.Reward, x.Advantage)
				}
			}
		}
	}
}

type badShapePolicy struct{}

func (badShapePolicy) Complete(_ context.Context, reqs []Request) ([][]Completion, error) {
	return make([][]Completion, len(reqs)), nil // no completions at all
}

type failingPolicy struct{}

func (failingPolicy) Complete(context.Context, []Request) ([][]Completion, error) {
	return nil, errors.New("backend exploded")
}

func TestSpyPlayErrors(t *testing.T) {
	e := spyTestEngine(t, nil)
	pairs := spyTestPairs(t, 1)
	ctx := context.Background()
	if _, _, err := e.Play(ctx, badShapePolicy{}, pairs, 0); err == nil || !strings.Contains(err.Error(), "completions") {
		t.Errorf("short answer: err = %v", err)
	}
	if _, _, err := e.Play(ctx, failingPolicy{}, pairs, 0); err == nil || !strings.Contains(err.Error(), "backend exploded") {
		t.Errorf("failing policy: err = %v", err)
	}
	if err := os.Remove(pairs[0].ModifiedPath()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.Play(ctx, NewScriptedSpyPolicy(1), pairs, 0); err == nil || !strings.Contains(err.Error(), pairs[0].ModifiedPath()) {
		t.Errorf("missing image: err = %v, want it named", err)
	}
	if _, err := NewSpyEngine(SpySettings{Players: 2}, e.Prompts); err == nil {
		t.Error("2 players accepted")
	}
	if _, err := (&ScriptedSpyPolicy{}).Complete(ctx, []Request{{N: 1, Role: RoleSpy}}); err == nil {
		t.Error("scripted policy played without the truth")
	}
}

func TestRoutedPolicyMixedGame(t *testing.T) {
	silent := &spyFuncPolicy{text: func(Request, int) string { return "I say nothing." }}
	ref := &countingPolicy{Policy: NewScriptedSpyPolicy(1)}
	e := spyTestEngine(t, nil)
	games := playScored(t, e, RouteByRole(ref, map[string]Policy{RoleSpy: silent}), spyTestPairs(t, 3), 0)
	for _, g := range games {
		checkSpyRules(t, g)
		for _, x := range SpySamplesOf([]*SpyGame{g}, StageClue) {
			if (x.Role == RoleSpy) != (x.Text == "I say nothing.") {
				t.Errorf("game %d P%d (%s) played by the wrong policy: %q", g.ID, x.Player, x.Role, x.Text)
			}
		}
	}
	// Each turn has exactly one spy among the games' requests of other seats: the reference still
	// gets the rest of every turn in a single call.
	if ref.calls > 2*4+1 {
		t.Errorf("reference policy called %d times, want at most %d", ref.calls, 2*4+1)
	}
	byPlayer := RouteByPlayer(ref, map[int]Policy{0: silent})
	games = playScored(t, e, byPlayer, spyTestPairs(t, 1), 0)
	for _, x := range SpySamplesOf(games, StageDecision) {
		if x.Text != "I say nothing." || x.Vote.Kind != VoteInvalid {
			t.Errorf("observer not routed: %q", x.Text)
		}
	}
}
