package report

import "github.com/vzlocal/vzlocal/selfplay"

// PhaseSpan is a run of consecutive steps in one phase.
type PhaseSpan struct {
	Phase    string
	From, To int // first and last step
	Steps    int
}

// Timeline splits a run's steps into phase spans. A new span starts where the phase changes or a
// step says phase_switched (the switcher's own record, which also catches a switch back to the
// same phase after a gap in the log).
func Timeline(steps []selfplay.StepMetrics) []PhaseSpan {
	var spans []PhaseSpan
	for _, m := range steps {
		n := len(spans)
		if n == 0 || spans[n-1].Phase != m.Phase || m.PhaseSwitched {
			spans = append(spans, PhaseSpan{Phase: m.Phase, From: m.Step, To: m.Step, Steps: 1})
			continue
		}
		spans[n-1].To = m.Step
		spans[n-1].Steps++
	}
	return spans
}
