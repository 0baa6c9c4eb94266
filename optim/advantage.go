package optim

import (
	"fmt"
	"math"
)

// AdvantageEstimator names how a group's rewards become advantages.
type AdvantageEstimator string

const (
	// AdvGRPO is A_i = (r_i - mean) / (std + Eps).
	AdvGRPO AdvantageEstimator = "grpo"
	// AdvDrGRPO is A_i = r_i - mean (Dr. GRPO: no std scaling).
	AdvDrGRPO AdvantageEstimator = "drgrpo"
)

// AdvantageConfig selects the estimator. The published systems differ in the std they use:
// Vision-Zero's official code divides by the population std + 1e-8; EasyR1/verl (torch.std) by
// the sample std (n-1) + 1e-6. Both are offered.
type AdvantageConfig struct {
	Estimator   AdvantageEstimator
	Eps         float64 // added to the std (GRPO only)
	UnbiasedStd bool    // divide the variance by n-1 instead of n (GRPO only)
}

// GroupAdvantages returns the advantages of one group of rewards (the G completions of one
// prompt) and whether the group had zero spread. A zero-spread group (all rewards bitwise
// equal) gets exactly A = 0 for both estimators, never a rounding residue divided by eps; the
// trainer counts such groups for frac_zero_std.
func GroupAdvantages(rewards []float64, cfg AdvantageConfig) (adv []float64, zeroStd bool, err error) {
	if len(rewards) == 0 {
		return nil, false, fmt.Errorf("advantages: empty group")
	}
	if cfg.Estimator != AdvGRPO && cfg.Estimator != AdvDrGRPO {
		return nil, false, fmt.Errorf("advantages: unknown estimator %q (want grpo or drgrpo)", cfg.Estimator)
	}
	if !(cfg.Eps >= 0) || math.IsInf(cfg.Eps, 0) {
		return nil, false, fmt.Errorf("advantages: eps %v, want a finite value >= 0", cfg.Eps)
	}
	for i, r := range rewards {
		if math.IsNaN(r) || math.IsInf(r, 0) {
			return nil, false, fmt.Errorf("advantages: reward[%d] = %v", i, r)
		}
	}
	adv = make([]float64, len(rewards))
	zeroStd = true
	for _, r := range rewards[1:] {
		if r != rewards[0] {
			zeroStd = false
			break
		}
	}
	if zeroStd {
		return adv, true, nil
	}
	n := float64(len(rewards))
	var mean float64
	for _, r := range rewards {
		mean += r
	}
	mean /= n
	for i, r := range rewards {
		adv[i] = r - mean
	}
	if cfg.Estimator == AdvDrGRPO {
		return adv, false, nil
	}
	var ss float64
	for _, d := range adv {
		ss += d * d
	}
	denom := n
	if cfg.UnbiasedStd {
		denom = n - 1 // n >= 2 here: a one-element group has zero spread
	}
	scale := math.Sqrt(ss/denom) + cfg.Eps
	if scale == 0 {
		return nil, false, fmt.Errorf("advantages: std + eps is zero for rewards %v", rewards)
	}
	for i := range adv {
		adv[i] /= scale
	}
	return adv, false, nil
}
