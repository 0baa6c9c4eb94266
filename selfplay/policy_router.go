package selfplay

import (
	"context"
	"fmt"
)

// RoutedPolicy sends each request to the policy Pick chooses for it, so one game can mix players:
// in evaluation the candidate adapter plays some seats (by Request.Player or Request.Role) and the
// reference model the others. Requests for the same policy still go in one Complete call.
type RoutedPolicy struct {
	Pick func(Request) Policy
}

var _ Policy = (*RoutedPolicy)(nil)

// RouteByRole plays the listed roles with their policies and every other role with def.
func RouteByRole(def Policy, byRole map[string]Policy) *RoutedPolicy {
	return &RoutedPolicy{Pick: func(r Request) Policy {
		if p, ok := byRole[r.Role]; ok {
			return p
		}
		return def
	}}
}

// RouteByPlayer plays the listed seats (1..N, 0 the observer) with their policies and the others
// with def.
func RouteByPlayer(def Policy, byPlayer map[int]Policy) *RoutedPolicy {
	return &RoutedPolicy{Pick: func(r Request) Policy {
		if p, ok := byPlayer[r.Player]; ok {
			return p
		}
		return def
	}}
}

// Complete splits the batch by policy, asks each policy once, and puts the answers back in order.
func (rp *RoutedPolicy) Complete(ctx context.Context, reqs []Request) ([][]Completion, error) {
	type group struct {
		pol  Policy
		idx  []int
		reqs []Request
	}
	var groups []*group
	for i, r := range reqs {
		p := rp.Pick(r)
		if p == nil {
			return nil, fmt.Errorf("routed policy: no policy for player %d (%s)", r.Player, r.Role)
		}
		var g *group
		for _, x := range groups {
			if x.pol == p {
				g = x
				break
			}
		}
		if g == nil {
			g = &group{pol: p}
			groups = append(groups, g)
		}
		g.idx, g.reqs = append(g.idx, i), append(g.reqs, r)
	}
	out := make([][]Completion, len(reqs))
	for _, g := range groups {
		res, err := g.pol.Complete(ctx, g.reqs)
		if err != nil {
			return nil, err
		}
		if len(res) != len(g.reqs) {
			return nil, fmt.Errorf("routed policy: a policy answered %d of %d requests", len(res), len(g.reqs))
		}
		for k, i := range g.idx {
			out[i] = res[k]
		}
	}
	return out, nil
}
