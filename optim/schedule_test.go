package optim

import (
	"strings"
	"testing"
)

// Peak 1e-3, min 1e-4, 10 steps, warm-up 20% = 2 steps: warm-up gives 0.5e-3, 1e-3; then
// p = (s-2)/8. Cosine at p = 1/4, 1/2, 3/4 is min + 9e-4 * {0.8535534, 0.5, 0.1464466}
// (0.5*(1+cos(pi*p))); linear is min + 9e-4*(1-p).
func TestScheduleHandValues(t *testing.T) {
	base := Schedule{PeakLR: 1e-3, MinLR: 1e-4, TotalSteps: 10, WarmupFrac: 0.2}
	tests := []struct {
		kind ScheduleKind
		step int
		want float64
	}{
		{ScheduleConstant, 0, 0.5e-3},
		{ScheduleConstant, 1, 1e-3},
		{ScheduleConstant, 2, 1e-3},
		{ScheduleConstant, 50, 1e-3},
		{ScheduleLinear, 0, 0.5e-3},
		{ScheduleLinear, 2, 1e-3},
		{ScheduleLinear, 4, 1e-4 + 9e-4*0.75},
		{ScheduleLinear, 6, 0.55e-3},
		{ScheduleLinear, 10, 1e-4},
		{ScheduleLinear, 11, 1e-4},
		{ScheduleCosine, 0, 0.5e-3},
		{ScheduleCosine, 1, 1e-3},
		{ScheduleCosine, 2, 1e-3},
		{ScheduleCosine, 4, 1e-4 + 9e-4*0.8535534},
		{ScheduleCosine, 6, 0.55e-3},
		{ScheduleCosine, 8, 1e-4 + 9e-4*0.1464466},
		{ScheduleCosine, 10, 1e-4},
		{ScheduleCosine, 1000, 1e-4},
	}
	for _, tc := range tests {
		s := base
		s.Kind = tc.kind
		got, err := s.LR(tc.step)
		if err != nil {
			t.Fatalf("%s step %d: %v", tc.kind, tc.step, err)
		}
		if !near(got, tc.want, 1e-7) {
			t.Errorf("%s step %d: lr %.9g, want %.9g", tc.kind, tc.step, got, tc.want)
		}
	}
}

// Warm-up in steps, no warm-up, and the fraction's rounding up (0.1 of 15 steps = 2 steps).
func TestScheduleWarmup(t *testing.T) {
	tests := []struct {
		name string
		s    Schedule
		step int
		want float64
	}{
		{"steps", Schedule{Kind: ScheduleConstant, PeakLR: 1, WarmupSteps: 4}, 0, 0.25},
		{"steps end", Schedule{Kind: ScheduleConstant, PeakLR: 1, WarmupSteps: 4}, 3, 1},
		{"none", Schedule{Kind: ScheduleCosine, PeakLR: 1, TotalSteps: 4}, 0, 1},
		{"none, cosine mid", Schedule{Kind: ScheduleCosine, PeakLR: 1, TotalSteps: 4}, 2, 0.5},
		{"frac rounds up", Schedule{Kind: ScheduleConstant, PeakLR: 1, TotalSteps: 15, WarmupFrac: 0.1}, 0, 0.5},
		{"frac rounds up, end", Schedule{Kind: ScheduleConstant, PeakLR: 1, TotalSteps: 15, WarmupFrac: 0.1}, 1, 1},
		{"all warm-up", Schedule{Kind: ScheduleLinear, PeakLR: 1, TotalSteps: 2, WarmupSteps: 2}, 2, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.s.LR(tc.step)
			if err != nil {
				t.Fatal(err)
			}
			if !near(got, tc.want, 1e-12) {
				t.Errorf("lr %v, want %v", got, tc.want)
			}
		})
	}
}

func TestScheduleErrors(t *testing.T) {
	tests := []struct {
		name string
		s    Schedule
		step int
		want string
	}{
		{"unknown kind", Schedule{Kind: "step", PeakLR: 1}, 0, "unknown kind"},
		{"negative lr", Schedule{Kind: ScheduleConstant, PeakLR: -1}, 0, "peak lr"},
		{"min above peak", Schedule{Kind: ScheduleCosine, PeakLR: 1, MinLR: 2, TotalSteps: 5}, 0, "min lr"},
		{"both warm-ups", Schedule{Kind: ScheduleConstant, PeakLR: 1, TotalSteps: 5, WarmupSteps: 1, WarmupFrac: 0.1}, 0, "set one"},
		{"cosine without total", Schedule{Kind: ScheduleCosine, PeakLR: 1}, 0, "needs total steps"},
		{"fraction without total", Schedule{Kind: ScheduleConstant, PeakLR: 1, WarmupFrac: 0.1}, 0, "needs total steps"},
		{"fraction above 1", Schedule{Kind: ScheduleConstant, PeakLR: 1, TotalSteps: 5, WarmupFrac: 1.5}, 0, "warm-up fraction"},
		{"warm-up longer than run", Schedule{Kind: ScheduleLinear, PeakLR: 1, TotalSteps: 5, WarmupSteps: 6}, 0, "longer than the run"},
		{"negative step", Schedule{Kind: ScheduleConstant, PeakLR: 1}, -1, "negative step"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.s.LR(tc.step)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
