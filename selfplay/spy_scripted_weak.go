package selfplay

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
)

// CarelessSpyPolicy is a weak scripted player, the losing side of evaluation tests: as the spy it
// always names its own version of a changed object (it gives itself away whenever the pair has
// one), and as a voter or observer it ignores the clues and names a random other player. Civilian
// clues are the scripted policy's truthful ones. Like ScriptedSpyPolicy its choices depend only on
// Seed and the request.
type CarelessSpyPolicy struct {
	Seed  int64
	clues *ScriptedSpyPolicy
}

var _ Policy = (*CarelessSpyPolicy)(nil)

// NewCarelessSpyPolicy returns the weak scripted player.
func NewCarelessSpyPolicy(seed int64) *CarelessSpyPolicy {
	return &CarelessSpyPolicy{Seed: seed, clues: &ScriptedSpyPolicy{Seed: seed, SlipRate: 1}}
}

// Complete answers clue turns through the scripted policy (always slipping as the spy) and
// decisions with random guesses.
func (cp *CarelessSpyPolicy) Complete(ctx context.Context, reqs []Request) ([][]Completion, error) {
	out := make([][]Completion, len(reqs))
	var clueIdx []int
	var clueReqs []Request
	for i, r := range reqs {
		if r.Role != RoleVoter && r.Role != RoleObserver {
			clueIdx, clueReqs = append(clueIdx, i), append(clueReqs, r)
			continue
		}
		t, ok := r.Truth.(*SpyTruth)
		if !ok || t == nil {
			return nil, fmt.Errorf("careless policy: request %d (player %d, %s) carries no spy game truth", i, r.Player, r.Role)
		}
		n := max(r.N, 1)
		out[i] = make([]Completion, n)
		for k := range n {
			out[i][k] = Completion{Text: cp.guess(t, r, k), Finish: "stop"}
		}
	}
	if len(clueReqs) > 0 {
		clues, err := cp.clues.Complete(ctx, clueReqs)
		if err != nil {
			return nil, err
		}
		for k, i := range clueIdx {
			out[i] = clues[k]
		}
	}
	return out, nil
}

// guess names a uniformly random player other than the voter.
func (cp *CarelessSpyPolicy) guess(t *SpyTruth, r Request, k int) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "careless/%d/%d/%d/%d", cp.Seed, t.Game, r.Player, k)
	rng := rand.New(rand.NewPCG(h.Sum64(), uint64(cp.Seed)))
	var cands []int
	for q := 1; q <= t.Prompt.Players; q++ {
		if q != r.Player {
			cands = append(cands, q)
		}
	}
	who := "the observer"
	if r.Player > 0 {
		who = fmt.Sprintf("player %d", r.Player)
	}
	return fmt.Sprintf("As %s I did not compare the clues with my picture; I pick someone.\n\\boxed{%d}",
		who, cands[rng.IntN(len(cands))])
}
