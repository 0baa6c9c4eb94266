package selfplay

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSpySummaryAndReport(t *testing.T) {
	g := goldenGame()
	pairs := spyTestPairs(t, 1)
	g.Original, g.SpyImage, g.PairID = pairs[0].OriginalPath(), pairs[0].ModifiedPath(), pairs[0].ID
	for _, x := range g.Samples {
		if x.Stage == StageClue && x.Player == 2 && x.Round == 2 {
			x.Clue, x.ClueOK = NoClue, false
		}
	}
	if err := g.Score(DefaultSpySettings(), NewSpyRAE(0.9)); err != nil {
		t.Fatal(err)
	}
	sum := SummarizeSpyGames([]*SpyGame{g}, Rollout{})
	want := SpySummary{Games: 1, SpyCaughtRate: 1, DecisionAcc: 3.0 / 8, AbstainRate: 1.0 / 8, InvalidRate: 1.0 / 8,
		ClueMissingRate: 1.0 / 8, MeanClueChars: float64(len("a clue")), DecisionReward: 2.37 / 8}
	if !spyNear(sum.DecisionReward, want.DecisionReward, 1e-9) {
		t.Errorf("mean decision reward %v, want %v", sum.DecisionReward, want.DecisionReward)
	}
	sum.DecisionReward = want.DecisionReward
	if sum != want {
		t.Errorf("summary %+v\nwant    %+v", sum, want)
	}
	if !strings.Contains(sum.String(), "tokens/s n/a") {
		t.Errorf("summary without tokens should say n/a: %s", sum)
	}

	path := filepath.Join(t.TempDir(), "r", "report.html")
	if err := WriteSpyReport(path, "test <run>", []*SpyGame{g}, sum); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{"data:image/png;base64,", "test &lt;run&gt;", "spy caught", NoClue, "N/A", "2.49", "P3 (spy)", "Player 3 named a purple cylinder"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if n := strings.Count(page, "data:image/png;base64,"); n != 2 {
		t.Errorf("%d embedded images, want 2", n)
	}
	g.Original = filepath.Join(t.TempDir(), "gone.png")
	if err := WriteSpyReport(path, "x", []*SpyGame{g}, sum); err == nil || !strings.Contains(err.Error(), "gone.png") {
		t.Errorf("missing image: err = %v", err)
	}
}

func TestSpyPrinter(t *testing.T) {
	e := spyTestEngine(t, nil)
	var plain, color bytes.Buffer
	pp, pc := &SpyPrinter{W: &plain}, &SpyPrinter{W: &color, Color: true}
	e.OnTurn = func(g *SpyGame, s []*SpySample) { pp.Turn(g, s); pc.Turn(g, s) }
	games := playScored(t, e, NewScriptedSpyPolicy(1), spyTestPairs(t, 1), 0)
	pp.Result(games[0])
	out := plain.String()
	for _, want := range []string{"Game 0", "g0 R1 P1", "g0 R2 P4", "observer votes:", "clue rewards", "decision rewards"} {
		if !strings.Contains(out, want) {
			t.Errorf("transcript lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colour codes without Color")
	}
	if !strings.Contains(color.String(), "\x1b[") {
		t.Error("no colour codes with Color")
	}
}
