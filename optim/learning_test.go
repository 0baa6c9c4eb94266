package optim

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The whole optim path on a policy small enough to differentiate by hand: a softmax over 4
// actions with logits theta, two tokens per completion (each an independent draw), reward = the
// fraction of tokens equal to action 2. Each step samples groups, turns rewards into GRPO
// advantages, gets per-token weights from PGLoss (with KL to the initial policy and TIS against
// a slightly different behaviour policy), backpropagates w_t through log-softmax
// (d logp_a / d theta_j = [a = j] - p_j), clips and steps AdamW on a cosine schedule. With fixed
// seeds the mean reward must climb from the uniform policy's 0.25 to above 0.9.
func TestPolicyGradientLearnsToyTask(t *testing.T) {
	const (
		actions, good   = 4, 2
		steps, groups   = 60, 4
		groupSize, toks = 8, 2
	)
	theta := make([]float32, actions)
	ref := logSoftmax(theta)
	opt, err := NewAdamW(AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	if err != nil {
		t.Fatal(err)
	}
	sched := Schedule{Kind: ScheduleCosine, PeakLR: 0.1, MinLR: 0.01, TotalSteps: steps, WarmupFrac: 0.1}
	cfg := PGConfig{Agg: AggTokenMean, ClipLow: 0.2, ClipHigh: 0.2, BetaKL: 0.01, KL: KLK3, TIS: ISToken, TISCap: 2}
	rng := rand.New(rand.NewPCG(7, 8))

	var first, last float64
	for step := 0; step < steps; step++ {
		logp := logSoftmax(theta)
		// The behaviour policy is the current one seen through a quantizer's noise.
		behaviour := make([]float64, actions)
		for a := range behaviour {
			behaviour[a] = logp[a] + 0.01*float64(a%2*2-1)
		}
		var seqs []PGSequence
		var chosen [][]int
		var rewardSum float64
		for g := 0; g < groups; g++ {
			rewards := make([]float64, groupSize)
			groupSeqs := make([]PGSequence, groupSize)
			for k := range rewards {
				var s PGSequence
				var acts []int
				for range toks {
					a := sample(rng, behaviour)
					acts = append(acts, a)
					s.LogpNew = append(s.LogpNew, logp[a])
					s.LogpBehaviour = append(s.LogpBehaviour, behaviour[a])
					s.LogpRef = append(s.LogpRef, ref[a])
					if a == good {
						rewards[k] += 1.0 / toks
					}
				}
				rewardSum += rewards[k]
				groupSeqs[k] = s
				chosen = append(chosen, acts)
			}
			adv, _, err := GroupAdvantages(rewards, AdvantageConfig{Estimator: AdvGRPO, Eps: 1e-6})
			if err != nil {
				t.Fatal(err)
			}
			for k := range groupSeqs {
				groupSeqs[k].Advantage = adv[k]
			}
			seqs = append(seqs, groupSeqs...)
		}
		meanReward := rewardSum / (groups * groupSize)
		if step == 0 {
			first = meanReward
		}
		last = meanReward

		res, err := PGLoss(seqs, cfg)
		if err != nil {
			t.Fatal(err)
		}
		grad := make([]float32, actions)
		probs := make([]float64, actions)
		for j := range probs {
			probs[j] = math.Exp(logp[j])
		}
		for i, acts := range chosen {
			for tok, a := range acts {
				w := res.Weights[i][tok]
				for j := range grad {
					ind := 0.0
					if j == a {
						ind = 1
					}
					grad[j] += float32(w * (ind - probs[j]))
				}
			}
		}
		params := []Param{{Name: "theta", Value: theta, Grad: grad}}
		if _, err := ClipGradNorm(params, 1); err != nil {
			t.Fatal(err)
		}
		lr, err := sched.LR(step)
		if err != nil {
			t.Fatal(err)
		}
		if err := opt.Step(params, lr); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("mean reward %.3f at step 0, %.3f at step %d", first, last, steps-1)
	if first > 0.5 || last < 0.9 {
		t.Errorf("mean reward %.3f at the first step, %.3f at the last: want <= 0.5 then >= 0.9", first, last)
	}
}

func logSoftmax(theta []float32) []float64 {
	maxv := math.Inf(-1)
	for _, x := range theta {
		maxv = math.Max(maxv, float64(x))
	}
	var sum float64
	for _, x := range theta {
		sum += math.Exp(float64(x) - maxv)
	}
	out := make([]float64, len(theta))
	for i, x := range theta {
		out[i] = float64(x) - maxv - math.Log(sum)
	}
	return out
}

// sample draws from a distribution given as (possibly unnormalised) log-probs.
func sample(rng *rand.Rand, logp []float64) int {
	var total float64
	for _, l := range logp {
		total += math.Exp(l)
	}
	u := rng.Float64() * total
	for i, l := range logp {
		u -= math.Exp(l)
		if u < 0 {
			return i
		}
	}
	return len(logp) - 1
}
