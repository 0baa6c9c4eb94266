package selfplay

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
)

// SpyPrinter shows games on a terminal as they are played: clues by player and round, the votes,
// the spy, who won and the rewards. Colour only when Color is set (a terminal).
type SpyPrinter struct {
	W     io.Writer
	Color bool
}

const (
	spyAnsiReset  = "\x1b[0m"
	spyAnsiBold   = "\x1b[1m"
	spyAnsiDim    = "\x1b[2m"
	spyAnsiRed    = "\x1b[31m"
	spyAnsiGreen  = "\x1b[32m"
	spyAnsiYellow = "\x1b[33m"
	spyAnsiCyan   = "\x1b[36m"
)

func (p *SpyPrinter) c(code, s string) string {
	if !p.Color {
		return s
	}
	return code + s + spyAnsiReset
}

// Turn prints one model call's samples; it has the signature of SpyEngine.OnTurn.
func (p *SpyPrinter) Turn(g *SpyGame, samples []*SpySample) {
	if len(samples) == 0 {
		return
	}
	x := samples[0]
	if x.Turn == 0 {
		fmt.Fprintf(p.W, "%s  pair %s, %d players, %d rounds, spy = %s (sees %s)\n",
			p.c(spyAnsiBold, fmt.Sprintf("Game %d", g.ID)), g.PairID, g.Players, g.Rounds,
			p.c(spyAnsiRed, fmt.Sprintf("player %d", g.Spy)), filepath.Base(g.SpyImage))
	}
	if x.Stage == StageClue {
		who := fmt.Sprintf("P%d", x.Player)
		if x.Role == RoleSpy {
			who = p.c(spyAnsiRed, who+"*")
		} else {
			who = p.c(spyAnsiCyan, who+" ")
		}
		clue := x.Clue
		if !x.ClueOK {
			clue = p.c(spyAnsiDim, clue)
		}
		fmt.Fprintf(p.W, "  g%d R%d %s %s\n", g.ID, x.Round, who, clue)
		return
	}
	votes := make([]string, len(samples))
	for i, s := range samples {
		votes[i] = p.vote(g, s)
	}
	who := "observer"
	if x.Role == RoleVoter {
		who = fmt.Sprintf("voter P%d", x.Player)
	}
	fmt.Fprintf(p.W, "  g%d %s votes: %s\n", g.ID, who, strings.Join(votes, " "))
}

func (p *SpyPrinter) vote(g *SpyGame, s *SpySample) string {
	switch {
	case s.Vote == nil || s.Vote.Kind == VoteInvalid:
		return p.c(spyAnsiDim, "?")
	case s.Vote.Kind == VoteAbstain:
		return p.c(spyAnsiYellow, "N/A")
	case s.Vote.Player == g.Spy:
		return p.c(spyAnsiGreen, fmt.Sprint(s.Vote.Player))
	}
	return fmt.Sprint(s.Vote.Player)
}

// Result prints a scored game's outcome and rewards.
func (p *SpyPrinter) Result(g *SpyGame) {
	tally := make([]string, len(g.Tally))
	for i, n := range g.Tally {
		tally[i] = fmt.Sprintf("P%d:%d", i+1, n)
	}
	verdict := p.c(spyAnsiRed, fmt.Sprintf("spy P%d wins", g.Spy))
	if g.SpyCaught {
		verdict = p.c(spyAnsiGreen, fmt.Sprintf("spy P%d caught", g.Spy))
	}
	rewards := make([]string, len(g.ClueRewards))
	for i, r := range g.ClueRewards {
		rewards[i] = fmt.Sprintf("P%d %+.3f (A %+.3f)", i+1, r, g.ClueAdvantages[i])
	}
	var dec []string
	for _, x := range g.Samples {
		if x.Stage == StageDecision {
			dec = append(dec, fmt.Sprintf("%+.2f", x.Reward))
		}
	}
	fmt.Fprintf(p.W, "  g%d %s; votes %s\n  g%d clue rewards %s\n  g%d decision rewards %s\n\n",
		g.ID, verdict, strings.Join(tally, " "), g.ID, strings.Join(rewards, ", "), g.ID, strings.Join(dec, " "))
}
