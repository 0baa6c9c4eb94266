package report

import (
	"fmt"
	"math"
	"sort"
)

// Z95 is the standard normal quantile for a two-sided 95% interval.
const Z95 = 1.959963984540054

// Wilson returns the Wilson score interval for wins successes out of games trials at normal
// quantile z (Z95 for 95%). It is used instead of the normal (Wald) interval because eval runs are
// small (tens to hundreds of games) and win rates near 0 or 1 are common: Wilson never leaves
// [0, 1] and keeps its coverage there. With no games the interval is the whole of [0, 1].
func Wilson(wins, games int, z float64) (low, high float64, err error) {
	if games < 0 || wins < 0 || wins > games {
		return 0, 0, fmt.Errorf("wilson interval: %d wins out of %d games is not a count", wins, games)
	}
	if games == 0 {
		return 0, 1, nil
	}
	n := float64(games)
	p := float64(wins) / n
	z2 := z * z
	denom := 1 + z2/n
	center := (p + z2/(2*n)) / denom
	half := z / denom * math.Sqrt(p*(1-p)/n+z2/(4*n*n))
	// Clamp rounding noise at the edges (0/n gives a low of -1e-17, not 0).
	return math.Max(0, center-half), math.Min(1, center+half), nil
}

// Tally counts wins out of games for one side of an evaluation.
type Tally struct {
	Wins  int `json:"wins"`
	Games int `json:"games"`
}

// Rate is the fraction of games won, 0 with no games.
func (t Tally) Rate() float64 {
	if t.Games == 0 {
		return 0
	}
	return float64(t.Wins) / float64(t.Games)
}

// Interval is the Wilson 95% interval of the win rate.
func (t Tally) Interval() (low, high float64) {
	low, high, err := Wilson(t.Wins, t.Games, Z95)
	if err != nil {
		// A Tally only grows through Add, which keeps 0 <= Wins <= Games; a hand-built bad one
		// has no meaningful interval, so say "unknown" as the whole range.
		return 0, 1
	}
	return low, high
}

// WinTally accumulates game outcomes of a candidate by the role it played ("spy", "civilian",
// "questioner", ...), so an evaluation can report the overall win rate and the rate per role.
type WinTally struct {
	roles map[string]Tally
}

// Add records one game in which the candidate played role and won or lost.
func (w *WinTally) Add(role string, won bool) {
	if w.roles == nil {
		w.roles = make(map[string]Tally)
	}
	t := w.roles[role]
	t.Games++
	if won {
		t.Wins++
	}
	w.roles[role] = t
}

// Total sums all roles.
func (w *WinTally) Total() Tally {
	var t Tally
	for _, r := range w.roles {
		t.Wins += r.Wins
		t.Games += r.Games
	}
	return t
}

// Role is the tally of one role (zero if the candidate never played it).
func (w *WinTally) Role(role string) Tally { return w.roles[role] }

// Roles lists the roles seen, sorted.
func (w *WinTally) Roles() []string {
	out := make([]string, 0, len(w.roles))
	for r := range w.roles {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// Record summarizes the tally as one eval.jsonl record for the given training step.
func (w *WinTally) Record(step int) EvalRecord {
	rec := EvalRecord{Step: step}
	rec.setTotals(w.Total())
	if len(w.roles) > 0 {
		rec.Roles = make(map[string]RoleWinRate, len(w.roles))
		for name, t := range w.roles {
			low, high := t.Interval()
			rec.Roles[name] = RoleWinRate{Games: t.Games, Wins: t.Wins, WinRate: t.Rate(), Low: low, High: high}
		}
	}
	return rec
}
