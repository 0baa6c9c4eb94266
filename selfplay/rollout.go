package selfplay

import (
	"context"
	"fmt"
	"time"
)

// Rollout measures the model calls of a game step or session.
type Rollout struct {
	Calls   int           // Complete calls
	Samples int           // completions
	Tokens  int           // sampled tokens (0 when the backend reports none)
	Elapsed time.Duration // time spent inside Complete
}

// TokensPerSecond is the rollout throughput (0 when the backend reports no tokens).
func (r Rollout) TokensPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Tokens) / r.Elapsed.Seconds()
}

// Add folds another measurement into r.
func (r *Rollout) Add(o Rollout) {
	r.Calls += o.Calls
	r.Samples += o.Samples
	r.Tokens += o.Tokens
	r.Elapsed += o.Elapsed
}

// callPolicy asks the policy, checks that it answered every request with N completions, and
// counts the call in stats. Both games go through it.
func callPolicy(ctx context.Context, pol Policy, reqs []Request, stats *Rollout) ([][]Completion, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	if pol == nil {
		return nil, fmt.Errorf("no policy")
	}
	start := time.Now()
	outs, err := pol.Complete(ctx, reqs)
	stats.Elapsed += time.Since(start)
	stats.Calls++
	if err != nil {
		return nil, err
	}
	if len(outs) != len(reqs) {
		return nil, fmt.Errorf("policy answered %d of %d requests", len(outs), len(reqs))
	}
	for i, o := range outs {
		if len(o) != reqs[i].N {
			return nil, fmt.Errorf("policy gave %d completions for request %d (player %d, %s), want %d",
				len(o), i, reqs[i].Player, reqs[i].Role, reqs[i].N)
		}
		for _, c := range o {
			stats.Samples++
			if len(c.Tokens) > 0 {
				stats.Tokens += len(c.Tokens)
			} else {
				stats.Tokens += c.EvalCount
			}
		}
	}
	return outs, nil
}
