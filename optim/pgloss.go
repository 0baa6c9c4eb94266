package optim

import (
	"fmt"
	"math"
	"sort"
)

// PGSequence is one completion of the batch, token-aligned: every slice has one entry per
// completion token.
type PGSequence struct {
	// LogpNew is log pi_theta(t) under the current parameters, from the gradient engine.
	LogpNew []float64
	// LogpOld is log pi_old(t): the trainer's log-probs at the start of this batch's updates.
	// nil means "a detached copy of LogpNew" (the first update of a batch: rho = 1 with
	// d(rho)/d(LogpNew) = 1).
	LogpOld []float64
	// LogpBehaviour is what the rollout sampler used. Required when TIS or MIS is on; otherwise
	// optional and used only for the mismatch stats.
	LogpBehaviour []float64
	// LogpRef is the reference policy's. Required when BetaKL > 0; otherwise optional and used
	// only for the KL stat.
	LogpRef []float64
	// Mask marks the tokens that count (false: padding, prompt, tool output). nil: all count.
	// The values of masked-out tokens are ignored and get weight 0.
	Mask []bool
	// Advantage applies to every token of the sequence.
	Advantage float64
}

// PGResult is the loss and its derivative.
type PGResult struct {
	// Loss is the objective to minimise:
	//
	//	Loss = sum_i sum_{t kept} ( is_t * pg_t + beta * kl_t ) / D_it
	//	pg_t = max(-A_i*rho_t, -A_i*clip(rho_t, 1-eps_low, 1+eps_high)),  rho_t = exp(new_t - old_t)
	//
	// with is_t the TIS weight (1 when off; a constant: it involves no LogpNew), kl_t the KL
	// estimator, and D_it the normaliser of the aggregation. "Kept" tokens are those of the mask
	// not dropped by MIS. KL is not importance-weighted (as in verl: the IS weight corrects the
	// policy-gradient term only).
	Loss float64
	// PolicyLoss and KLLoss are the two parts of Loss (KLLoss already times beta).
	PolicyLoss, KLLoss float64
	// Weights[i][t] = d(Loss)/d(LogpNew[i][t]) exactly; 0 for tokens that are not kept.
	Weights [][]float64
	Stats   PGStats
}

// PGStats are the health signals of one batch (training.md's metrics).
type PGStats struct {
	Tokens     int // tokens of the mask
	KeptTokens int // tokens of the mask not dropped by MIS
	// KLMean is the mean KL estimator over kept tokens (0 without reference log-probs).
	KLMean float64
	// ClippedFrac is the fraction of kept tokens whose PPO clip removed the gradient.
	ClippedFrac float64
	// LogRatioAbsMean and LogRatioAbsP99 describe |LogpNew - LogpBehaviour| over the mask's
	// tokens (nearest-rank p99): the trainer/rollout mismatch. 0 without behaviour log-probs.
	LogRatioAbsMean, LogRatioAbsP99 float64
	// SeqLogRatioMean is the mean over sequences with tokens of sum_t (LogpOld - LogpBehaviour),
	// the sequence-level IS log-ratio before truncation.
	SeqLogRatioMean float64
	// DroppedFrac is the fraction of the mask's tokens that MIS dropped.
	DroppedFrac float64
	// ISWeightMean is the mean TIS weight over kept tokens; TruncatedFrac the fraction of kept
	// tokens whose weight hit the cap.
	ISWeightMean, TruncatedFrac float64
}

// PGLoss computes the loss, its per-token derivative and the stats for a batch. The batch is the
// unit of normalisation: pass every sequence that shares one optimizer step.
func PGLoss(seqs []PGSequence, cfg PGConfig) (PGResult, error) {
	if err := cfg.Validate(); err != nil {
		return PGResult{}, err
	}
	if len(seqs) == 0 {
		return PGResult{}, fmt.Errorf("pg loss: empty batch")
	}
	if err := checkSequences(seqs, cfg); err != nil {
		return PGResult{}, err
	}

	// Pass 1: which tokens are kept, and their importance weights.
	n := len(seqs)
	kept := make([][]bool, n)
	isw := make([][]float64, n)
	var st PGStats
	var absRatios []float64
	var seqRatioSum float64
	seqsWithTokens, longest := 0, 0
	for i, s := range seqs {
		longest = max(longest, len(s.LogpNew))
		kept[i], isw[i] = make([]bool, len(s.LogpNew)), make([]float64, len(s.LogpNew))
		valid := 0
		var seqLogRatio float64
		for t := range s.LogpNew {
			if !tokenValid(s, t) {
				continue
			}
			valid++
			if s.LogpBehaviour != nil {
				seqLogRatio += oldLogp(s, t) - s.LogpBehaviour[t]
				absRatios = append(absRatios, math.Abs(s.LogpNew[t]-s.LogpBehaviour[t]))
			}
		}
		st.Tokens += valid
		if valid > 0 {
			seqsWithTokens++
			seqRatioSum += seqLogRatio
		}
		for t := range s.LogpNew {
			if !tokenValid(s, t) {
				continue
			}
			var tokLogRatio float64
			if s.LogpBehaviour != nil {
				tokLogRatio = oldLogp(s, t) - s.LogpBehaviour[t]
			}
			if !misKeeps(cfg, tokLogRatio, seqLogRatio) {
				continue
			}
			kept[i][t] = true
			isw[i][t] = tisWeight(cfg, tokLogRatio, seqLogRatio)
		}
	}
	if st.Tokens == 0 {
		return PGResult{}, fmt.Errorf("pg loss: no valid token in %d sequences", n)
	}

	// Pass 2: the normaliser of each sequence's tokens.
	keptPerSeq := make([]int, n)
	seqsKept := 0
	for i := range seqs {
		for _, k := range kept[i] {
			if k {
				keptPerSeq[i]++
			}
		}
		st.KeptTokens += keptPerSeq[i]
		if keptPerSeq[i] > 0 {
			seqsKept++
		}
	}
	normLen := cfg.NormLen
	if normLen == 0 {
		normLen = longest
	}
	if cfg.Agg == AggSeqMeanTokenSumNorm && longest > normLen {
		return PGResult{}, fmt.Errorf("pg loss: a sequence has %d tokens, more than the norm length %d", longest, normLen)
	}
	denom := func(i int) float64 {
		switch cfg.Agg {
		case AggSeqMeanTokenMean:
			return float64(seqsKept) * float64(keptPerSeq[i])
		case AggTokenMean:
			return float64(st.KeptTokens)
		default: // AggSeqMeanTokenSumNorm
			return float64(n) * float64(normLen)
		}
	}

	// Pass 3: loss and weights.
	res := PGResult{Weights: make([][]float64, n)}
	var klSum, isSum float64
	clipped, truncated := 0, 0
	for i, s := range seqs {
		res.Weights[i] = make([]float64, len(s.LogpNew))
		if keptPerSeq[i] == 0 {
			continue
		}
		d := denom(i)
		for t := range s.LogpNew {
			if !kept[i][t] {
				continue
			}
			pg, dpg, wasClipped := ppoTerm(s.Advantage, s.LogpNew[t]-oldLogp(s, t), cfg.ClipLow, cfg.ClipHigh)
			if wasClipped {
				clipped++
			}
			w := isw[i][t]
			isSum += w
			if cfg.TIS != ISOff && w == cfg.TISCap {
				truncated++
			}
			res.PolicyLoss += w * pg / d
			grad := w * dpg
			if s.LogpRef != nil {
				kl, dkl := klTerm(cfg.KL, s.LogpRef[t]-s.LogpNew[t])
				klSum += kl
				res.KLLoss += cfg.BetaKL * kl / d
				grad += cfg.BetaKL * dkl
			}
			res.Weights[i][t] = grad / d
		}
	}
	res.Loss = res.PolicyLoss + res.KLLoss

	if st.KeptTokens > 0 {
		k := float64(st.KeptTokens)
		if seqs[0].LogpRef != nil {
			st.KLMean = klSum / k
		}
		st.ClippedFrac = float64(clipped) / k
		st.ISWeightMean = isSum / k
		st.TruncatedFrac = float64(truncated) / k
	}
	st.DroppedFrac = float64(st.Tokens-st.KeptTokens) / float64(st.Tokens)
	if len(absRatios) > 0 {
		st.LogRatioAbsMean, st.LogRatioAbsP99 = meanAndP99(absRatios)
		st.SeqLogRatioMean = seqRatioSum / float64(seqsWithTokens)
	}
	res.Stats = st
	return res, nil
}

// ppoTerm returns the clipped surrogate as a loss, max(-A*rho, -A*clip(rho)), its derivative
// with respect to logp_new (d(rho)/d(logp_new) = rho), and whether the clipped branch won
// strictly (then the derivative is 0). logRatio = logp_new - logp_old.
func ppoTerm(adv, logRatio, clipLow, clipHigh float64) (loss, dloss float64, clipped bool) {
	lr := math.Max(-logRatioClamp, math.Min(logRatioClamp, logRatio))
	rho := math.Exp(lr)
	clippedRho := math.Max(1-clipLow, math.Min(1+clipHigh, rho))
	unclippedLoss, clippedLoss := -adv*rho, -adv*clippedRho
	if clippedLoss > unclippedLoss {
		return clippedLoss, 0, true
	}
	if logRatio != lr { // clamped: the value does not move with logp_new
		return unclippedLoss, 0, false
	}
	return unclippedLoss, -adv * rho, false
}

// klTerm returns the KL estimator and its derivative with respect to logp_new, given
// logRatio = logp_ref - logp_new (so d(logRatio)/d(logp_new) = -1).
func klTerm(est KLEstimator, logRatio float64) (kl, dkl float64) {
	d := math.Max(-logRatioClamp, math.Min(logRatioClamp, logRatio))
	inside := d == logRatio
	switch est {
	case KLK1:
		kl, dkl = -d, 1
	default: // KLK3
		e := math.Exp(d)
		kl, dkl = e-1-d, 1-e
	}
	if !inside {
		dkl = 0
	}
	return kl, dkl
}

// misKeeps says whether masked IS keeps a token, given its own and its sequence's log-ratio
// log(pi_old/pi_b).
func misKeeps(cfg PGConfig, tokLogRatio, seqLogRatio float64) bool {
	var r float64
	switch cfg.MIS {
	case ISOff:
		return true
	case ISToken:
		r = tokLogRatio
	default:
		r = seqLogRatio
	}
	// Compare in log space: exp of a long sequence's ratio can overflow. log(0) = -Inf and
	// log(+Inf) = +Inf make the bounds one-sided.
	return r >= math.Log(cfg.MISMin) && r <= math.Log(cfg.MISMax)
}

// tisWeight is min(exp(ratio), C) computed as exp(min(ratio, log C)) so that a long sequence's
// ratio cannot overflow; the capped case returns C itself so callers can count it.
func tisWeight(cfg PGConfig, tokLogRatio, seqLogRatio float64) float64 {
	var r float64
	switch cfg.TIS {
	case ISOff:
		return 1
	case ISToken:
		r = tokLogRatio
	default:
		r = seqLogRatio
	}
	if r >= math.Log(cfg.TISCap) {
		return cfg.TISCap
	}
	return math.Exp(r)
}

func tokenValid(s PGSequence, t int) bool { return s.Mask == nil || s.Mask[t] }

func oldLogp(s PGSequence, t int) float64 {
	if s.LogpOld == nil {
		return s.LogpNew[t]
	}
	return s.LogpOld[t]
}

// meanAndP99 returns the mean and the nearest-rank 99th percentile (the ceil(0.99*n)-th
// smallest value) of xs; xs is sorted in place.
func meanAndP99(xs []float64) (mean, p99 float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	sort.Float64s(xs)
	rank := int(math.Ceil(0.99 * float64(len(xs))))
	return mean, xs[max(rank, 1)-1]
}

// checkSequences validates lengths, required inputs and finiteness of every value that counts.
func checkSequences(seqs []PGSequence, cfg PGConfig) error {
	first := seqs[0]
	for i, s := range seqs {
		n := len(s.LogpNew)
		if s.Mask != nil && len(s.Mask) != n {
			return fmt.Errorf("pg loss: sequence %d: %d mask values for %d tokens", i, len(s.Mask), n)
		}
		// Optional log-probs must be given for all sequences or none: a partial batch would make
		// the stats (and with beta or IS on, the loss) silently mix two meanings.
		for _, f := range []struct {
			name        string
			xs          []float64
			firstHasOne bool
		}{
			{"old", s.LogpOld, first.LogpOld != nil},
			{"behaviour", s.LogpBehaviour, first.LogpBehaviour != nil},
			{"reference", s.LogpRef, first.LogpRef != nil},
		} {
			if f.xs != nil && len(f.xs) != n {
				return fmt.Errorf("pg loss: sequence %d: %d %s log-probs for %d tokens", i, len(f.xs), f.name, n)
			}
			if (f.xs != nil) != f.firstHasOne {
				return fmt.Errorf("pg loss: sequence %d: %s log-probs given for some sequences only", i, f.name)
			}
		}
		if cfg.needsBehaviour() && s.LogpBehaviour == nil {
			return fmt.Errorf("pg loss: sequence %d: importance sampling (TIS %q, MIS %q) needs behaviour log-probs", i, cfg.TIS, cfg.MIS)
		}
		if cfg.BetaKL > 0 && s.LogpRef == nil {
			return fmt.Errorf("pg loss: sequence %d: beta KL %v needs reference log-probs", i, cfg.BetaKL)
		}
		if math.IsNaN(s.Advantage) || math.IsInf(s.Advantage, 0) {
			return fmt.Errorf("pg loss: sequence %d: advantage %v", i, s.Advantage)
		}
		for t := 0; t < n; t++ {
			if !tokenValid(s, t) {
				continue
			}
			for _, v := range []struct {
				name string
				xs   []float64
			}{{"new", s.LogpNew}, {"old", s.LogpOld}, {"behaviour", s.LogpBehaviour}, {"reference", s.LogpRef}} {
				if v.xs != nil && (math.IsNaN(v.xs[t]) || math.IsInf(v.xs[t], 0)) {
					return fmt.Errorf("pg loss: sequence %d token %d: %s log-prob %v", i, t, v.name, v.xs[t])
				}
			}
		}
	}
	return nil
}
