package selfplay

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

// goldenObserverTexts are the observer samples of games.md 1.3: votes [3, 3, 3, N/A, 1, 2,
// invalid, 7], sample 3 with too-short reasoning, sample 7 with no answer.
var goldenObserverTexts = []string{
	`Player 3 named a purple cylinder, which my picture lacks. \boxed{3}`,
	`Only player 3 contradicts the picture. \boxed{3}`,
	`short \boxed{3}`,
	`Every clue fits my picture, so I cannot tell. \boxed{N/A}`,
	`Player 1 seems vague about the objects. \boxed{1}`,
	`Player 2 repeated others; suspicious. \boxed{2}`,
	`I think it is player three but I will not say so formally.`,
	`Seven looks like a good number to me. \boxed{7}`,
}

// goldenGame builds the game of games.md 1.3: N=4, spy 3, two rounds of clues, eight observer samples.
func goldenGame() *SpyGame {
	g := &SpyGame{ID: 1, Players: 4, Rounds: 2, Spy: 3, Decision: DecisionObserver}
	turn := 0
	for r := 1; r <= 2; r++ {
		for p := 1; p <= 4; p++ {
			role := RoleCivilian
			if p == 3 {
				role = RoleSpy
			}
			g.Samples = append(g.Samples, &SpySample{Turn: turn, Stage: StageClue, Round: r, Player: p, Role: role, Clue: "a clue", ClueOK: true})
			turn++
		}
	}
	for k, text := range goldenObserverTexts {
		v := ParseVote(text)
		g.Samples = append(g.Samples, &SpySample{Turn: turn, Stage: StageDecision, Role: RoleObserver, Index: k,
			Text: text, Vote: &v, FormatOK: spyFormatOK(text, v)})
	}
	return g
}

func spyNear(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestSpyGoldenVector(t *testing.T) {
	g := goldenGame()
	rae := NewSpyRAE(0.9)
	if err := g.Score(DefaultSpySettings(), rae); err != nil {
		t.Fatal(err)
	}

	wantR := []float64{2.49, 2.49, 1.89, -0.30, -0.90, -0.90, -1.50, -0.90}
	wantA := []float64{1.3861, 1.3861, 1.0070, -0.3767, -0.7558, -0.7558, -1.1349, -0.7558}
	dec := SpySamplesOf([]*SpyGame{g}, StageDecision)
	if len(dec) != 8 {
		t.Fatalf("%d decision samples, want 8", len(dec))
	}
	for k, x := range dec {
		if !spyNear(x.Reward, wantR[k], 1e-9) {
			t.Errorf("decision sample %d: reward %.4f, want %.2f", k+1, x.Reward, wantR[k])
		}
		if !spyNear(x.Advantage, wantA[k], 5e-5) {
			t.Errorf("decision sample %d: advantage %.4f, want %.4f", k+1, x.Advantage, wantA[k])
		}
	}
	if want := []int{1, 1, 3, 0}; !spyEqualInts(g.Tally, want) {
		t.Errorf("tally %v, want %v", g.Tally, want)
	}
	if !spyNear(g.Psi, 2.3333, 5e-5) {
		t.Errorf("Psi %.4f, want 2.3333", g.Psi)
	}
	wantClue := []float64{0.0444, 0.0444, -0.2333, 0.1444}
	wantClueA := []float64{0.0367, 0.0367, -0.2100, 0.1367}
	for p := range 4 {
		if !spyNear(g.ClueRewards[p], wantClue[p], 5e-5) {
			t.Errorf("P%d clue reward %.4f, want %.4f", p+1, g.ClueRewards[p], wantClue[p])
		}
		if !spyNear(g.ClueAdvantages[p], wantClueA[p], 5e-5) {
			t.Errorf("P%d clue advantage %.4f, want %.4f", p+1, g.ClueAdvantages[p], wantClueA[p])
		}
	}
	if !spyNear(rae.Spy, -0.023333, 5e-7) || !spyNear(rae.Civ, 0.007778, 5e-7) {
		t.Errorf("baselines after: spy %.6f civ %.6f, want -0.023333 0.007778", rae.Spy, rae.Civ)
	}
	// A player's advantage applies to each of its clues, in both rounds.
	for _, x := range SpySamplesOf([]*SpyGame{g}, StageClue) {
		if x.Advantage != g.ClueAdvantages[x.Player-1] || x.Reward != g.ClueRewards[x.Player-1] {
			t.Errorf("round %d P%d: reward/advantage %v/%v differ from the player's", x.Round, x.Player, x.Reward, x.Advantage)
		}
	}
	if g.Accused != 3 || !g.SpyCaught {
		t.Errorf("accused %d caught %v, want 3 true", g.Accused, g.SpyCaught)
	}
}

func TestSpyDecisionRewardValues(t *testing.T) {
	tests := []struct {
		variant string
		vote    SpyVote
		format  bool
		want    float64
	}{
		{RewardCode, SpyVote{Kind: VotePlayer, Player: 2}, true, 2.49},
		{RewardCode, SpyVote{Kind: VotePlayer, Player: 2}, false, 1.89},
		{RewardCode, SpyVote{Kind: VoteAbstain}, true, -0.30},
		{RewardCode, SpyVote{Kind: VotePlayer, Player: 1}, true, -0.90},
		{RewardCode, SpyVote{Kind: VoteInvalid}, false, -1.50},
		{RewardPaper, SpyVote{Kind: VotePlayer, Player: 2}, false, 1},
		{RewardPaper, SpyVote{Kind: VoteAbstain}, true, -0.5},
		{RewardPaper, SpyVote{Kind: VotePlayer, Player: 7}, true, -1},
		{RewardPaper, SpyVote{Kind: VoteInvalid}, false, -1},
	}
	for _, tt := range tests {
		if got := SpyDecisionReward(tt.variant, tt.vote, tt.format, 2); !spyNear(got, tt.want, 1e-12) {
			t.Errorf("%s %+v fmt %v: %v, want %v", tt.variant, tt.vote, tt.format, got, tt.want)
		}
	}
}

func TestSpyGroupAdvantages(t *testing.T) {
	for _, r := range [][]float64{nil, {1.5}, {-0.3, -0.3, -0.3}} {
		for i, a := range SpyGroupAdvantages(r) {
			if a != 0 {
				t.Errorf("equal rewards %v: advantage %d = %v, want 0", r, i, a)
			}
		}
	}
	a := SpyGroupAdvantages([]float64{1, 3})
	if !spyNear(a[0], -1, 1e-7) || !spyNear(a[1], 1, 1e-7) {
		t.Errorf("advantages of [1 3] = %v, want [-1 1] (population std)", a)
	}
}

func TestSpyClueRewardsZeroSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 2000 {
		n := 3 + rng.IntN(7)
		tally := make([]int, n+1)
		for p := 1; p <= n; p++ {
			tally[p] = rng.IntN(9)
		}
		spy := 1 + rng.IntN(n)
		beta, lambda := rng.Float64(), rng.Float64()
		r, _ := SpyClueRewards(tally, spy, beta, lambda)
		var sum float64
		for _, x := range r[1:] {
			sum += x
		}
		if math.Abs(sum) > 1e-12 {
			t.Fatalf("trial %d: tally %v spy %d beta %v lambda %v: rewards %v sum to %g", trial, tally, spy, beta, lambda, r, sum)
		}
	}
}

func TestSpyRAECheckpoint(t *testing.T) {
	a := NewSpyRAE(0.9)
	b := NewSpyRAE(0.9)
	g := goldenGame()
	if err := g.Score(DefaultSpySettings(), a); err != nil {
		t.Fatal(err)
	}
	blob, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	restored, err := UnmarshalSpyRAE(blob)
	if err != nil {
		t.Fatal(err)
	}
	// A restored run continues exactly like one that never stopped.
	if err := goldenGame().Score(DefaultSpySettings(), b); err != nil {
		t.Fatal(err)
	}
	g1, g2 := goldenGame(), goldenGame()
	if err := g1.Score(DefaultSpySettings(), restored); err != nil {
		t.Fatal(err)
	}
	if err := g2.Score(DefaultSpySettings(), b); err != nil {
		t.Fatal(err)
	}
	if restored.Spy != b.Spy || restored.Civ != b.Civ || restored.Games != 2 {
		t.Errorf("restored baselines %+v, uninterrupted %+v", restored, b)
	}
	if g1.ClueAdvantages[0] != g2.ClueAdvantages[0] {
		t.Errorf("advantages differ after restore: %v vs %v", g1.ClueAdvantages, g2.ClueAdvantages)
	}
	if _, err := UnmarshalSpyRAE([]byte(`{"alpha": 1.5}`)); err == nil {
		t.Error("alpha 1.5 accepted")
	}
	if _, err := UnmarshalSpyRAE([]byte(`not json`)); err == nil {
		t.Error("garbage accepted")
	}
}

func spyEqualInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSpyScoreRejectsBrokenRecords(t *testing.T) {
	for _, g := range []*SpyGame{
		{ID: 1, Players: 4, Spy: 9},
		{ID: 2, Players: 4, Spy: 0},
		{ID: 3, Players: 2, Spy: 1},
		{ID: 4, Players: 4, Spy: 2, Samples: []*SpySample{{Stage: StageClue, Player: 7}}},
	} {
		if err := g.Score(DefaultSpySettings(), NewSpyRAE(0.9)); err == nil {
			t.Errorf("game %d scored: %+v", g.ID, g)
		}
	}
	if err := goldenGame().Score(DefaultSpySettings(), nil); err == nil {
		t.Error("scored without baselines")
	}
}

// TestSpySettingsRejectNaNTemperature: a NaN or infinite temperature is refused when the game is
// set up, not by the sampler in the middle of a run.
func TestSpySettingsRejectNaNTemperature(t *testing.T) {
	for _, temp := range []float64{math.NaN(), math.Inf(1), -1} {
		s := DefaultSpySettings()
		s.Decide.Temperature = temp
		if err := s.Validate(); err == nil {
			t.Errorf("temperature %v accepted", temp)
		}
		q := DefaultQSSettings()
		q.Answer.Temperature = temp
		if err := q.Validate(); err == nil {
			t.Errorf("qs temperature %v accepted", temp)
		}
	}
}
