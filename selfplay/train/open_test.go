package train

import (
	"math"
	"testing"

	"github.com/vzlocal/vzlocal/selfplay"
)

// TestSpyAdvEpsFlag: --adv-eps reaches the spy game's decision advantages.
func TestSpyAdvEpsFlag(t *testing.T) {
	cfg := defaultConfig(t)
	cfg.Loss.AdvEps = 0.5
	s := spySettings(cfg, t.TempDir())
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	g := &selfplay.SpyGame{ID: 1, Players: 4, Rounds: 1, Spy: 3}
	for _, v := range []selfplay.SpyVote{{Kind: selfplay.VotePlayer, Player: 3}, {Kind: selfplay.VoteAbstain}} {
		v := v
		g.Samples = append(g.Samples, &selfplay.SpySample{Stage: selfplay.StageDecision, Vote: &v, FormatOK: true})
	}
	if err := g.Score(s, selfplay.NewSpyRAE(s.Alpha)); err != nil {
		t.Fatal(err)
	}
	r0, r1 := g.Samples[0].Reward, g.Samples[1].Reward
	std := math.Abs(r0-r1) / 2
	want := (r0 - (r0+r1)/2) / (std + 0.5)
	if got := g.Samples[0].Advantage; math.Abs(got-want) > 1e-12 {
		t.Fatalf("advantage %v, want %v (eps 0.5)", got, want)
	}
	cfg.Loss.AdvEps = -1
	if err := spySettings(cfg, t.TempDir()).Validate(); err == nil {
		t.Fatal("a negative --adv-eps was accepted")
	}
}
