package optim

import (
	"fmt"
	"math"
)

// LossAgg names how per-token losses are averaged into one number (training.md, `loss-agg`).
type LossAgg string

const (
	// AggSeqMeanTokenMean: mean over sequences of each sequence's token mean (original GRPO and
	// the Vision-Zero code). Sequences with no kept token are left out of the outer mean.
	AggSeqMeanTokenMean LossAgg = "seq-mean-token-mean"
	// AggTokenMean: sum over all kept tokens / number of kept tokens (DAPO; V-Zero).
	AggTokenMean LossAgg = "token-mean"
	// AggSeqMeanTokenSumNorm: sum over all kept tokens / (number of sequences * NormLen)
	// (Dr. GRPO: a constant normaliser, no length bias).
	AggSeqMeanTokenSumNorm LossAgg = "seq-mean-token-sum-norm"
)

// KLEstimator names the per-token estimator of KL(pi_theta || pi_ref), with
// d = clamp(logp_ref - logp_new, -20, 20):
//
//	k1 = -d               (unbiased, can be negative)
//	k3 = exp(d) - 1 - d   (Schulman's low-variance estimator, >= 0; Vision-Zero, V-Zero)
type KLEstimator string

const (
	KLK1 KLEstimator = "k1"
	KLK3 KLEstimator = "k3"
)

// ISLevel says where an importance-sampling correction applies: "" (off), per token, or per
// sequence (the ratio is exp of the sum of the per-token log differences over the valid tokens).
type ISLevel string

const (
	ISOff      ISLevel = ""
	ISToken    ISLevel = "token"
	ISSequence ISLevel = "sequence"
)

// logRatioClamp bounds every log-ratio before exp (EasyR1/verl use 20): a runaway token gives a
// large but finite loss instead of Inf, and no gradient through the clamped value.
const logRatioClamp = 20.0

// PGConfig holds the settings of the policy-gradient objective.
type PGConfig struct {
	Agg LossAgg
	// NormLen is the length normaliser of AggSeqMeanTokenSumNorm, normally the sampler's
	// max-new-tokens; 0 means the longest sequence of the batch (verl's default).
	NormLen int

	// PPO clip: rho is clipped to [1-ClipLow, 1+ClipHigh] (0.2 and 0.2; DAPO's clip-higher
	// uses 0.2 and 0.28). With one update per batch rho = 1 and the clip never fires.
	ClipLow, ClipHigh float64

	// BetaKL weighs the KL penalty; 0 needs no reference log-probs.
	BetaKL float64
	KL     KLEstimator // may be empty only when BetaKL = 0; the KL stat then uses k3

	// Truncated importance sampling against the behaviour policy: each token's policy term is
	// multiplied by min(exp(logp_old - logp_behaviour), TISCap), at token or sequence level.
	TIS    ISLevel
	TISCap float64 // C, about 2

	// Masked importance sampling: tokens (or whole sequences) whose ratio
	// exp(logp_old - logp_behaviour) is outside [MISMin, MISMax] are dropped from the loss,
	// numerator and denominator, as if masked. MISMin may be 0 and MISMax +Inf (one-sided).
	MIS            ISLevel
	MISMin, MISMax float64
}

// DefaultPG returns the Vision-Zero official settings of games.md 1.5 (clip 0.2, k3, beta 0.04,
// seq-mean-token-mean) with token-level TIS at C = 2 as training.md recommends for quantized
// rollouts, and MIS off.
func DefaultPG() PGConfig {
	return PGConfig{
		Agg:      AggSeqMeanTokenMean,
		ClipLow:  0.2,
		ClipHigh: 0.2,
		BetaKL:   0.04,
		KL:       KLK3,
		TIS:      ISToken,
		TISCap:   2,
	}
}

// Validate reports the first inconsistent setting.
func (c PGConfig) Validate() error {
	switch c.Agg {
	case AggSeqMeanTokenMean, AggTokenMean, AggSeqMeanTokenSumNorm:
	default:
		return fmt.Errorf("pg loss: unknown loss aggregation %q (want %s, %s or %s)",
			c.Agg, AggSeqMeanTokenMean, AggTokenMean, AggSeqMeanTokenSumNorm)
	}
	if c.NormLen < 0 {
		return fmt.Errorf("pg loss: negative norm length %d", c.NormLen)
	}
	if !(c.ClipLow >= 0 && c.ClipLow < 1) {
		return fmt.Errorf("pg loss: clip low %v, want 0 <= eps_low < 1", c.ClipLow)
	}
	if !(c.ClipHigh >= 0) || math.IsInf(c.ClipHigh, 0) {
		return fmt.Errorf("pg loss: clip high %v, want a finite value >= 0", c.ClipHigh)
	}
	if !(c.BetaKL >= 0) || math.IsInf(c.BetaKL, 0) {
		return fmt.Errorf("pg loss: beta KL %v, want a finite value >= 0", c.BetaKL)
	}
	if c.KL != KLK1 && c.KL != KLK3 && !(c.KL == "" && c.BetaKL == 0) {
		return fmt.Errorf("pg loss: unknown KL estimator %q (want k1 or k3)", c.KL)
	}
	if err := validISLevel("TIS", c.TIS); err != nil {
		return err
	}
	if err := validISLevel("MIS", c.MIS); err != nil {
		return err
	}
	if c.TIS != ISOff && (!(c.TISCap > 0) || math.IsInf(c.TISCap, 0)) {
		return fmt.Errorf("pg loss: TIS cap %v, want a finite value > 0", c.TISCap)
	}
	if c.MIS != ISOff && (!(c.MISMin >= 0) || !(c.MISMax > c.MISMin)) {
		return fmt.Errorf("pg loss: MIS range [%v, %v], want 0 <= min < max", c.MISMin, c.MISMax)
	}
	return nil
}

// ParseISLevel reads a level from a flag or config file: "token", "sequence", or "", "off",
// "none" for off.
func ParseISLevel(s string) (ISLevel, error) {
	switch s {
	case "", "off", "none":
		return ISOff, nil
	case string(ISToken), string(ISSequence):
		return ISLevel(s), nil
	}
	return ISOff, fmt.Errorf("importance sampling level %q: want token, sequence or off", s)
}

func validISLevel(what string, l ISLevel) error {
	switch l {
	case ISOff, ISToken, ISSequence:
		return nil
	}
	return fmt.Errorf("pg loss: unknown %s level %q (want token, sequence or empty for off)", what, l)
}

// needsBehaviour says whether the behaviour log-probs are required.
func (c PGConfig) needsBehaviour() bool { return c.TIS != ISOff || c.MIS != ISOff }
