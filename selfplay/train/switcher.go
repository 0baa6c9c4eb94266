package train

import (
	"fmt"

	"github.com/vzlocal/vzlocal/selfplay"
)

// Stages of the spy game's Iterative-SPO: the clue stage trains clue samples with role advantages
// (self-play); the decision stage trains observer samples with group-normalised advantages (RLVR).
const (
	StageClue     = selfplay.StageClue
	StageDecision = selfplay.StageDecision
)

// SwitchRule chooses how Iterative-SPO alternates stages.
const (
	SwitchPaper = "paper" // hysteresis on EMAs of decision accuracy and abstain rate (the paper)
	SwitchCycle = "cycle" // fixed number of steps per stage, starting with decision (the official code)
)

// SwitchConfig holds the thresholds of the stage switcher. The paper publishes only
// tau_acc_up = 0.9; the other defaults are ours (see docs/training.md for why).
type SwitchConfig struct {
	Rule      string  `help:"Stage switch rule: paper (EMA hysteresis) or cycle (fixed steps per stage)." default:"paper" enum:"paper,cycle"`
	TauAccUp  float64 `help:"Decision->clue when accuracy EMA >= this (and abstain EMA <= tau-na-down)." default:"0.9"`
	TauNaDown float64 `help:"Decision->clue needs abstain EMA <= this." default:"0.1"`
	TauErrUp  float64 `help:"Clue->decision when 1 - accuracy EMA >= this." default:"0.4"`
	TauNaUp   float64 `help:"Clue->decision when abstain EMA >= this." default:"0.3"`
	KMin      int     `help:"Minimum optimizer steps per stage before a switch." default:"3"`
	EMA       float64 `help:"EMA factor of the accuracy and abstain trackers (weight of the old value)." default:"0.8"`
	CycleLen  int     `help:"Steps per stage for --rule cycle (official script: 1)." default:"1"`
}

// Validate rejects settings that would make the switcher meaningless.
func (c SwitchConfig) Validate() error {
	switch {
	case c.Rule != SwitchPaper && c.Rule != SwitchCycle:
		return fmt.Errorf("switch rule %q: want paper or cycle", c.Rule)
	case c.EMA < 0 || c.EMA >= 1:
		return fmt.Errorf("switch EMA factor %v: want 0 <= ema < 1", c.EMA)
	case c.KMin < 1:
		return fmt.Errorf("switch k-min %d: want >= 1", c.KMin)
	case c.Rule == SwitchCycle && c.CycleLen < 1:
		return fmt.Errorf("switch cycle length %d: want >= 1", c.CycleLen)
	}
	for name, v := range map[string]float64{"tau-acc-up": c.TauAccUp, "tau-na-down": c.TauNaDown, "tau-err-up": c.TauErrUp, "tau-na-up": c.TauNaUp} {
		if v < 0 || v > 1 {
			return fmt.Errorf("switch %s %v: want a rate in [0, 1]", name, v)
		}
	}
	return nil
}

// SwitchState is the switcher's whole memory; it goes into every checkpoint.
type SwitchState struct {
	Stage        string  `json:"stage"`
	StepsInStage int     `json:"steps_in_stage"`
	AccEMA       float64 `json:"acc_ema"`
	AbstainEMA   float64 `json:"abstain_ema"`
	Observed     bool    `json:"observed"` // false until the first observation seeds the EMAs
	Switches     []int   `json:"switches"` // steps at which a new stage began
}

// NewSwitchState starts in the decision stage, as both the paper and the code do.
func NewSwitchState() SwitchState { return SwitchState{Stage: StageDecision} }

// Observe records one optimizer step's decision accuracy and abstain rate (measured in either
// stage: every game ends with a decision) and returns the stage of the NEXT step.
func (s *SwitchState) Observe(cfg SwitchConfig, step int, acc, abstain float64) string {
	if !s.Observed {
		s.AccEMA, s.AbstainEMA, s.Observed = acc, abstain, true
	} else {
		s.AccEMA = cfg.EMA*s.AccEMA + (1-cfg.EMA)*acc
		s.AbstainEMA = cfg.EMA*s.AbstainEMA + (1-cfg.EMA)*abstain
	}
	s.StepsInStage++
	if s.shouldSwitch(cfg) {
		if s.Stage == StageDecision {
			s.Stage = StageClue
		} else {
			s.Stage = StageDecision
		}
		s.StepsInStage = 0
		s.Switches = append(s.Switches, step+1)
	}
	return s.Stage
}

func (s *SwitchState) shouldSwitch(cfg SwitchConfig) bool {
	if cfg.Rule == SwitchCycle {
		return s.StepsInStage >= cfg.CycleLen
	}
	if s.StepsInStage < cfg.KMin {
		return false
	}
	if s.Stage == StageDecision {
		// The spy is too easy to find: the clues must get harder.
		return s.AccEMA >= cfg.TauAccUp && s.AbstainEMA <= cfg.TauNaDown
	}
	// The observer struggles: train it again.
	return 1-s.AccEMA >= cfg.TauErrUp || s.AbstainEMA >= cfg.TauNaUp
}
