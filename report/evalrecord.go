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
// reported rather than plotted. Win rate and interval must agree with the counts to 1e-3 (files
// may round); a record written with counts only (win_rate, low and high all 0 with wins > 0 is
// impossible) is completed from the counts.
func (r *EvalRecord) Validate() error {
	if r.Games < 0 || r.Wins < 0 || r.Wins > r.Games {
		return fmt.Errorf("step %d: %d wins out of %d games", r.Step, r.Wins, r.Games)
	}
	if r.Games == 0 {
		return fmt.Errorf("step %d: no games", r.Step)
	}
	t := Tally{Wins: r.Wins, Games: r.Games}
	if r.WinRate == 0 && r.Low == 0 && r.High == 0 {
		r.setTotals(t)
	}
	if math.Abs(r.WinRate-t.Rate()) > 1e-3 {
		return fmt.Errorf("step %d: win_rate %.4f but %d/%d = %.4f", r.Step, r.WinRate, r.Wins, r.Games, t.Rate())
	}
	if !(r.Low <= r.WinRate && r.WinRate <= r.High) || r.Low < 0 || r.High > 1 {
		return fmt.Errorf("step %d: interval [%.4f, %.4f] does not hold win_rate %.4f inside [0, 1]",
			r.Step, r.Low, r.High, r.WinRate)
	}
	for name, role := range r.Roles {
		if role.Games < 0 || role.Wins < 0 || role.Wins > role.Games {
			return fmt.Errorf("step %d: role %q: %d wins out of %d games", r.Step, name, role.Wins, role.Games)
		}
		if role.WinRate == 0 && role.Low == 0 && role.High == 0 {
			t := Tally{Wins: role.Wins, Games: role.Games}
			role.WinRate = t.Rate()
			role.Low, role.High = t.Interval()
			r.Roles[name] = role
		}
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
