package selfplay

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// CheckSpyGame verifies a recorded game against the rules of games.md 1.1 and 1.2: strict turn
// order, who sees which image, that every earlier clue is shown and that no player ever sees
// another player's private reasoning, that the spy does not vote, that the tally matches the
// votes and that the clue rewards sum to zero. End-to-end tests run it on games.jsonl.
func CheckSpyGame(g *SpyGame) error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("game %d: "+format, append([]any{g.ID}, a...)...))
	}
	if g.Players < 3 || g.Spy < 1 || g.Spy > g.Players || g.Rounds < 1 {
		return fmt.Errorf("game %d: %d players, %d rounds, spy %d", g.ID, g.Players, g.Rounds, g.Spy)
	}
	var clues []*SpySample
	lastTurn := -1
	for _, x := range g.Samples {
		if x.Turn < lastTurn {
			bad("turn %d after turn %d", x.Turn, lastTurn)
		}
		lastTurn = x.Turn
		if x.Stage == StageClue {
			clues = append(clues, x)
		}
	}
	if len(clues) != g.Players*g.Rounds {
		return errors.Join(append(errs, fmt.Errorf("game %d: %d clues, want %d", g.ID, len(clues), g.Players*g.Rounds))...)
	}
	// Reasoning that the prompts contain anyway (an empty completion, garbage such as "\boxed{")
	// proves nothing about visibility.
	template := clues[0].System + clues[0].Prompt
	distinct := func(r string) bool { return r != "" && !strings.Contains(template, r) }
	for i, x := range clues {
		if x.Round != i/g.Players+1 || x.Player != i%g.Players+1 || x.Turn != i {
			bad("clue %d is round %d player %d turn %d: out of order", i, x.Round, x.Player, x.Turn)
		}
		wantRole, wantImg := RoleCivilian, g.Original
		if x.Player == g.Spy {
			wantRole, wantImg = RoleSpy, g.SpyImage
		}
		if x.Role != wantRole || x.Image != wantImg {
			bad("R%d P%d is %s seeing %s, want %s seeing %s", x.Round, x.Player, x.Role, x.Image, wantRole, wantImg)
		}
		if x.Clue == "" {
			bad("R%d P%d has no clue, not even the placeholder", x.Round, x.Player)
		}
		for _, y := range clues[:i] {
			if !strings.Contains(x.Prompt, y.Clue) {
				bad("R%d P%d is not shown the clue of R%d P%d", x.Round, x.Player, y.Round, y.Player)
			}
			if !distinct(y.Reasoning) {
				continue
			}
			mine := y.Player == x.Player
			if shown := strings.Contains(x.Prompt, y.Reasoning); shown && !mine {
				bad("R%d P%d sees the private reasoning of R%d P%d", x.Round, x.Player, y.Round, y.Player)
			} else if !shown && mine {
				bad("R%d P%d is not shown its own reasoning of round %d", x.Round, x.Player, y.Round)
			}
		}
	}
	var votes []SpyVote
	for _, x := range g.Samples[len(clues):] {
		if x.Stage != StageDecision || x.Vote == nil {
			bad("a %s sample without a vote after the clue stage", x.Stage)
			continue
		}
		if x.Image != g.Original {
			bad("decision sample sees %s, want the original", x.Image)
		}
		if x.Role == RoleVoter && x.Player == g.Spy {
			bad("the spy voted")
		}
		for _, c := range clues {
			if !strings.Contains(x.Prompt, c.Clue) {
				bad("%s P%d is not shown the clue of R%d P%d", x.Role, x.Player, c.Round, c.Player)
			}
			if distinct(c.Reasoning) && strings.Contains(x.Prompt, c.Reasoning) && !(x.Role == RoleVoter && c.Player == x.Player) {
				bad("%s P%d sees the private reasoning of P%d", x.Role, x.Player, c.Player)
			}
		}
		votes = append(votes, *x.Vote)
	}
	if g.Scored {
		tally := SpyTally(votes, g.Players)[1:]
		if fmt.Sprint(tally) != fmt.Sprint(g.Tally) {
			bad("tally %v, but the votes give %v", g.Tally, tally)
		}
		var sum float64
		for _, r := range g.ClueRewards {
			sum += r
		}
		if len(g.ClueRewards) != g.Players || math.Abs(sum) > 1e-9 {
			bad("clue rewards %v are not zero-sum over %d players", g.ClueRewards, g.Players)
		}
	}
	return errors.Join(errs...)
}
