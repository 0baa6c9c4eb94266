package train

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func defaultSwitch() SwitchConfig {
	return SwitchConfig{Rule: SwitchPaper, TauAccUp: 0.9, TauNaDown: 0.1, TauErrUp: 0.4, TauNaUp: 0.3, KMin: 2, EMA: 0.5, CycleLen: 1}
}

func TestSwitcherPaperHysteresis(t *testing.T) {
	cfg := defaultSwitch()
	s := NewSwitchState()
	type obs struct {
		acc, na   float64
		wantStage string
	}
	steps := []obs{
		{1.0, 0.0, StageDecision}, // ema 1.0/0.0 but only 1 step in stage (k-min 2)
		{1.0, 0.0, StageClue},     // 2 steps, easy: switch to clue
		{0.2, 0.0, StageClue},     // acc ema 0.6, err 0.4 >= 0.4 but k-min not reached (1 step)
		{0.2, 0.0, StageDecision}, // acc ema 0.4: err 0.6 >= 0.4 -> decision
		{1.0, 0.5, StageDecision}, // acc ema 0.7, na ema 0.25
		{1.0, 0.0, StageDecision}, // acc ema 0.85 < 0.9: stay
		{1.0, 0.0, StageClue},     // acc ema 0.925, na 0.0625: switch
	}
	for i, o := range steps {
		got := s.Observe(cfg, i, o.acc, o.na)
		require.Equal(t, o.wantStage, got, "after step %d (acc ema %.4f, na ema %.4f)", i, s.AccEMA, s.AbstainEMA)
	}
	require.Equal(t, []int{2, 4, 7}, s.Switches)
}

func TestSwitcherAbstainSendsBackToDecision(t *testing.T) {
	cfg := defaultSwitch()
	s := SwitchState{Stage: StageClue}
	s.Observe(cfg, 0, 1.0, 0.5)
	require.Equal(t, StageDecision, s.Observe(cfg, 1, 1.0, 0.5), "abstain ema 0.5 >= 0.3 must switch to decision")
}

func TestSwitcherCycle(t *testing.T) {
	cfg := defaultSwitch()
	cfg.Rule, cfg.CycleLen = SwitchCycle, 2
	s := NewSwitchState()
	var stages []string
	for i := 0; i < 6; i++ {
		stages = append(stages, s.Observe(cfg, i, 0.5, 0.5))
	}
	// Stage of the next step after each observation: decision,decision | clue,clue | decision,decision.
	require.Equal(t, []string{StageDecision, StageClue, StageClue, StageDecision, StageDecision, StageClue}, stages)
}

func TestSwitchStateRoundTrip(t *testing.T) {
	cfg := defaultSwitch()
	a := NewSwitchState()
	for i := 0; i < 3; i++ {
		a.Observe(cfg, i, 0.95, 0.0)
	}
	b, err := json.Marshal(a)
	require.NoError(t, err)
	var c SwitchState
	require.NoError(t, json.Unmarshal(b, &c))
	require.Equal(t, a, c)
	require.Equal(t, a.Observe(cfg, 3, 0.1, 0.9), c.Observe(cfg, 3, 0.1, 0.9))
}

func TestSwitchConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(*SwitchConfig)
	}{
		{"rule", func(c *SwitchConfig) { c.Rule = "random" }},
		{"ema", func(c *SwitchConfig) { c.EMA = 1 }},
		{"kmin", func(c *SwitchConfig) { c.KMin = 0 }},
		{"tau", func(c *SwitchConfig) { c.TauAccUp = 1.5 }},
		{"cycle", func(c *SwitchConfig) { c.Rule, c.CycleLen = SwitchCycle, 0 }},
	} {
		cfg := defaultSwitch()
		tc.mut(&cfg)
		require.Error(t, cfg.Validate(), tc.name)
	}
	require.NoError(t, defaultSwitch().Validate())
}
