package optim

import (
	"fmt"
	"math"
)

// ScheduleKind names the decay after warm-up.
type ScheduleKind string

const (
	ScheduleConstant ScheduleKind = "constant"
	ScheduleLinear   ScheduleKind = "linear"
	ScheduleCosine   ScheduleKind = "cosine"
)

// Schedule maps an optimizer step (0-based) to a learning rate.
//
// Warm-up rises linearly over the first W steps as PeakLR*(s+1)/W (llm.c's convention, so the
// first step already moves; HF's s/W wastes step 0 on lr = 0). After warm-up, with
// progress p = (s-W)/(TotalSteps-W) clamped to [0, 1]:
//
//	constant: PeakLR
//	linear:   MinLR + (PeakLR-MinLR)*(1-p)
//	cosine:   MinLR + (PeakLR-MinLR)*0.5*(1+cos(pi*p))
//
// W is WarmupSteps, or ceil(WarmupFrac*TotalSteps) (TRL's rounding); set at most one of them.
// Steps past TotalSteps keep the final rate rather than failing, so a run extended on resume
// continues at MinLR (or PeakLR for constant).
type Schedule struct {
	Kind        ScheduleKind
	PeakLR      float64
	MinLR       float64 // final rate of linear and cosine; ignored by constant
	TotalSteps  int     // optimizer steps of the run; needed by linear and cosine, and by WarmupFrac
	WarmupSteps int
	WarmupFrac  float64 // e.g. 0.1 for the official Vision-Zero run's 10% warm-up
}

// Validate reports the first inconsistent field.
func (s Schedule) Validate() error {
	switch s.Kind {
	case ScheduleConstant, ScheduleLinear, ScheduleCosine:
	default:
		return fmt.Errorf("schedule: unknown kind %q (want constant, linear or cosine)", s.Kind)
	}
	if !(s.PeakLR >= 0) || math.IsInf(s.PeakLR, 0) {
		return fmt.Errorf("schedule: peak lr %v, want a finite value >= 0", s.PeakLR)
	}
	if s.Kind != ScheduleConstant && (!(s.MinLR >= 0) || s.MinLR > s.PeakLR) {
		return fmt.Errorf("schedule: min lr %v, want 0 <= min lr <= peak lr %v", s.MinLR, s.PeakLR)
	}
	if s.TotalSteps < 0 || s.WarmupSteps < 0 {
		return fmt.Errorf("schedule: negative steps (total %d, warm-up %d)", s.TotalSteps, s.WarmupSteps)
	}
	if !(s.WarmupFrac >= 0 && s.WarmupFrac <= 1) {
		return fmt.Errorf("schedule: warm-up fraction %v, want 0 <= f <= 1", s.WarmupFrac)
	}
	if s.WarmupFrac > 0 && s.WarmupSteps > 0 {
		return fmt.Errorf("schedule: both warm-up steps (%d) and warm-up fraction (%v) set; set one", s.WarmupSteps, s.WarmupFrac)
	}
	needTotal := s.Kind != ScheduleConstant || s.WarmupFrac > 0
	if needTotal && s.TotalSteps == 0 {
		return fmt.Errorf("schedule: %s with warm-up fraction %v needs total steps", s.Kind, s.WarmupFrac)
	}
	if s.Kind != ScheduleConstant && s.warmup() > s.TotalSteps {
		return fmt.Errorf("schedule: warm-up %d steps is longer than the run (%d)", s.warmup(), s.TotalSteps)
	}
	return nil
}

// warmup returns W in steps.
func (s Schedule) warmup() int {
	if s.WarmupFrac > 0 {
		return int(math.Ceil(s.WarmupFrac * float64(s.TotalSteps)))
	}
	return s.WarmupSteps
}

// LR returns the learning rate of 0-based optimizer step `step`.
func (s Schedule) LR(step int) (float64, error) {
	if err := s.Validate(); err != nil {
		return 0, err
	}
	if step < 0 {
		return 0, fmt.Errorf("schedule: negative step %d", step)
	}
	w := s.warmup()
	if step < w {
		return s.PeakLR * float64(step+1) / float64(w), nil
	}
	if s.Kind == ScheduleConstant {
		return s.PeakLR, nil
	}
	p := 1.0
	if s.TotalSteps > w {
		p = math.Min(1, float64(step-w)/float64(s.TotalSteps-w))
	}
	switch s.Kind {
	case ScheduleLinear:
		return s.MinLR + (s.PeakLR-s.MinLR)*(1-p), nil
	default: // cosine
		return s.MinLR + (s.PeakLR-s.MinLR)*0.5*(1+math.Cos(math.Pi*p)), nil
	}
}
