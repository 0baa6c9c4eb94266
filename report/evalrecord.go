package report

import (
	"encoding/json"
	"fmt"
	"math"
)

// EvalRecord is one line of RUNDIR/eval.jsonl: the candidate's win rate against a reference at
// one training step, with its Wilson 95% interval, overall and per role.
type EvalRecord struct {
	Step    int                    `json:"step"`
	Games   int                    `json:"games"`
	Wins    int                    `json:"wins"`
	WinRate float64                `json:"win_rate"`
	Low     float64                `json:"low"`
	High    float64                `json:"high"`
	Roles   map[string]RoleWinRate `json:"roles,omitempty"` // "spy", "civilian", ...
}

// RoleWinRate is the win rate of the candidate while playing one role.
type RoleWinRate struct {
	Games   int     `json:"games"`
	Wins    int     `json:"wins"`
	WinRate float64 `json:"win_rate"`
	Low     float64 `json:"low"`
	High    float64 `json:"high"`
}

func (r *EvalRecord) setTotals(t Tally) {
	r.Games, r.Wins = t.Games, t.Wins
	r.WinRate = t.Rate()
	r.Low, r.High = t.Interval()
}

// Validate checks the record's arithmetic, so that a hand-edited or corrupt eval.jsonl is
// reported rather than plotted. Win rate and interval must agree with the counts (the interval is
// the Wilson 95% interval) to 1e-3 (files may round); a record written with counts only (win_rate,
// low and high all 0 with wins > 0 is impossible) is completed from the counts. Roles likewise.
func (r *EvalRecord) Validate() error {
	if r.Games == 0 && r.Wins == 0 {
		return fmt.Errorf("step %d: no games", r.Step)
	}
	t := Tally{Wins: r.Wins, Games: r.Games}
	if err := checkRate(&r.WinRate, &r.Low, &r.High, t); err != nil {
		return fmt.Errorf("step %d: %w", r.Step, err)
	}
	for name, role := range r.Roles {
		if err := checkRate(&role.WinRate, &role.Low, &role.High, Tally{Wins: role.Wins, Games: role.Games}); err != nil {
			return fmt.Errorf("step %d: role %q: %w", r.Step, name, err)
		}
		r.Roles[name] = role
	}
	return nil
}

// checkRate checks a win rate and its interval against the counts, filling them in when all three
// are 0 (counts only).
func checkRate(rate, low, high *float64, t Tally) error {
	if t.Games < 0 || t.Wins < 0 || t.Wins > t.Games {
		return fmt.Errorf("%d wins out of %d games", t.Wins, t.Games)
	}
	wantLow, wantHigh := t.Interval()
	if *rate == 0 && *low == 0 && *high == 0 {
		*rate, *low, *high = t.Rate(), wantLow, wantHigh
		return nil
	}
	if math.Abs(*rate-t.Rate()) > 1e-3 {
		return fmt.Errorf("win_rate %.4f but %d/%d = %.4f", *rate, t.Wins, t.Games, t.Rate())
	}
	if !(*low <= *rate && *rate <= *high) || *low < 0 || *high > 1 {
		return fmt.Errorf("interval [%.4f, %.4f] does not hold win_rate %.4f inside [0, 1]", *low, *high, *rate)
	}
	if math.Abs(*low-wantLow) > 1e-3 || math.Abs(*high-wantHigh) > 1e-3 {
		return fmt.Errorf("interval [%.4f, %.4f] but the Wilson 95%% interval of %d/%d is [%.4f, %.4f]",
			*low, *high, t.Wins, t.Games, wantLow, wantHigh)
	}
	return nil
}

// MarshalLine encodes the record as one JSONL line (with the trailing newline).
func (r EvalRecord) MarshalLine() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode eval record: %w", err)
	}
	return append(b, '\n'), nil
}
