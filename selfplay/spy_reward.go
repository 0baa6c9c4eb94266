package selfplay

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/vzlocal/vzlocal/optim"
)

// SpyAccuracy is acc_k of games.md 1.2: +1 for the spy, -0.5 for an abstention, -1 for a wrong or
// invalid vote (a digit greater than N is wrong).
func SpyAccuracy(v SpyVote, spy int) float64 {
	switch {
	case v.Kind == VotePlayer && v.Player == spy:
		return 1
	case v.Kind == VoteAbstain:
		return -0.5
	default:
		return -1
	}
}

// SpyDecisionReward is the reward of one decision sample: acc for the paper variant; for the code
// variant 0.3*(2*fmt-1) + 1.2*acc + 0.99*[vote = spy].
func SpyDecisionReward(variant string, v SpyVote, formatOK bool, spy int) float64 {
	acc := SpyAccuracy(v, spy)
	if variant == RewardPaper {
		return acc
	}
	f, hit := 0.0, 0.0
	if formatOK {
		f = 1
	}
	if v.Kind == VotePlayer && v.Player == spy {
		hit = 1
	}
	return 0.3*(2*f-1) + 1.2*acc + 0.99*hit
}

// SpyGroupAdvantages normalises the decision rewards of one game: (r - mean) / (population std +
// 1e-8), the official code's epsilon. A group whose rewards are all equal gets zeros (no signal
// to learn from).
func SpyGroupAdvantages(rewards []float64) []float64 {
	return spyGroupAdvantages(rewards, SpyAdvEps)
}

// SpyAdvEps is the epsilon of the decision advantages' std normalisation (games.md 1.2).
const SpyAdvEps = 1e-8

// spyGroupAdvantages is optim's GRPO advantage with the population std and epsilon eps (>= 0,
// checked by SpySettings.Validate).
func spyGroupAdvantages(rewards []float64, eps float64) []float64 {
	if len(rewards) == 0 {
		return []float64{}
	}
	adv, _, err := optim.GroupAdvantages(rewards, optim.AdvantageConfig{Estimator: optim.AdvGRPO, Eps: eps})
	if err != nil { // only a non-finite reward or eps, which no scored vote produces
		return make([]float64, len(rewards))
	}
	return adv
}

// SpyTally counts the votes for each player 1..n (index 0 unused). Abstentions, invalid votes and
// votes outside 1..n are not counted.
func SpyTally(votes []SpyVote, n int) []int {
	c := make([]int, n+1)
	for _, v := range votes {
		if v.Kind == VotePlayer && v.Player >= 1 && v.Player <= n {
			c[v.Player]++
		}
	}
	return c
}

// SpyClueRewards are the zero-sum clue rewards of games.md 1.2 for players 1..n (index 0 unused):
// Psi = c_s - mean of the civilians' counts; the spy gets -beta*Psi, civilian p gets
// beta*Psi/(n-1) - lambda*(c_p - mean of the civilians' counts). They sum to zero.
func SpyClueRewards(tally []int, spy int, beta, lambda float64) (rewards []float64, psi float64) {
	n := len(tally) - 1
	var civMean float64
	for p := 1; p <= n; p++ {
		if p != spy {
			civMean += float64(tally[p])
		}
	}
	civMean /= float64(n - 1)
	psi = float64(tally[spy]) - civMean
	rewards = make([]float64, n+1)
	for p := 1; p <= n; p++ {
		if p == spy {
			rewards[p] = -beta * psi
		} else {
			rewards[p] = beta*psi/float64(n-1) - lambda*(float64(tally[p])-civMean)
		}
	}
	return rewards, psi
}

// SpyRAE holds the Role Advantage Estimation baselines: EMAs of the spy's and of the mean civilian
// clue reward. It is updated once per game in both training phases, before it is subtracted, and
// it belongs in checkpoints (JSON).
type SpyRAE struct {
	Alpha float64 `json:"alpha"`
	Spy   float64 `json:"b_spy"`
	Civ   float64 `json:"b_civ"`
	Games int     `json:"games"` // updates so far
}

// NewSpyRAE returns fresh baselines (both 0).
func NewSpyRAE(alpha float64) *SpyRAE { return &SpyRAE{Alpha: alpha} }

// Update folds one game's clue rewards (players 1..n, index 0 unused) into the baselines and
// returns each player's advantage r - b_role, computed with the updated baselines.
func (b *SpyRAE) Update(rewards []float64, spy int) []float64 {
	n := len(rewards) - 1
	var civMean float64
	for p := 1; p <= n; p++ {
		if p != spy {
			civMean += rewards[p]
		}
	}
	civMean /= float64(n - 1)
	b.Spy = b.Alpha*b.Spy + (1-b.Alpha)*rewards[spy]
	b.Civ = b.Alpha*b.Civ + (1-b.Alpha)*civMean
	b.Games++
	adv := make([]float64, n+1)
	for p := 1; p <= n; p++ {
		if p == spy {
			adv[p] = rewards[p] - b.Spy
		} else {
			adv[p] = rewards[p] - b.Civ
		}
	}
	return adv
}

// UnmarshalSpyRAE restores baselines saved with json.Marshal, rejecting values no run can produce.
func UnmarshalSpyRAE(b []byte) (*SpyRAE, error) {
	var r SpyRAE
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("RAE baselines: %w", err)
	}
	if r.Alpha < 0 || r.Alpha >= 1 || math.IsNaN(r.Spy) || math.IsNaN(r.Civ) || r.Games < 0 {
		return nil, fmt.Errorf("RAE baselines: invalid state %+v", r)
	}
	return &r, nil
}
