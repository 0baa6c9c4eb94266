package selfplay

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"

	"github.com/vzlocal/vzlocal/data"
)

// ScriptedSpyPolicy plays the spy game from the pair's item descriptions instead of looking at the
// images: truthful civilians, a spy that describes objects it knows are unchanged, and an observer
// (or voter) that votes from the clues alone. It is the reference opponent of tests and a sanity
// check of the rewards. Its choices are random but fixed by Seed and the request, never by the
// order or the batch the requests come in.
type ScriptedSpyPolicy struct {
	Seed int64
	// SlipRate is the chance that the spy describes its own version of a changed object (and so
	// gives itself away), to make games that the spy loses.
	SlipRate float64
	// GuessRate is the chance that an observer with no suspect guesses a player instead of
	// answering N/A.
	GuessRate float64
}

var _ Policy = (*ScriptedSpyPolicy)(nil)

// NewScriptedSpyPolicy returns a scripted player whose spy slips in 30% of its clues and whose
// unsure observer guesses half the time.
func NewScriptedSpyPolicy(seed int64) *ScriptedSpyPolicy {
	return &ScriptedSpyPolicy{Seed: seed, SlipRate: 0.3, GuessRate: 0.5}
}

// Complete answers spy game requests; any other request is an error.
func (sp *ScriptedSpyPolicy) Complete(_ context.Context, reqs []Request) ([][]Completion, error) {
	out := make([][]Completion, len(reqs))
	for i, r := range reqs {
		t, ok := r.Truth.(*SpyTruth)
		if !ok || t == nil || t.Pair == nil {
			return nil, fmt.Errorf("scripted policy: request %d (player %d, %s) carries no spy game truth", i, r.Player, r.Role)
		}
		n := max(r.N, 1)
		out[i] = make([]Completion, n)
		for k := range n {
			rng := sp.rng(t, r, k)
			var text string
			switch r.Role {
			case RoleCivilian:
				text = scriptedCivilian(t, rng)
			case RoleSpy:
				text = sp.scriptedSpy(t, rng)
			case RoleObserver, RoleVoter:
				text = sp.scriptedVote(t, r.Player, rng)
			default:
				return nil, fmt.Errorf("scripted policy: role %q is not a spy game role", r.Role)
			}
			out[i][k] = Completion{Text: text, Finish: "stop"}
		}
	}
	return out, nil
}

func (sp *ScriptedSpyPolicy) rng(t *SpyTruth, r Request, k int) *rand.Rand {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d/%s/%d/%d/%d/%s", sp.Seed, t.Game, r.Role, r.Player, t.Prompt.Round, k, t.Pair.ID)
	return rand.New(rand.NewPCG(h.Sum64(), uint64(sp.Seed)))
}

// pick chooses one of the candidates, preferring ones nobody has said yet.
func scriptedPick(cands []string, said []SpyClueLine, rng *rand.Rand) string {
	var fresh []string
	for _, c := range cands {
		if !scriptedMentioned(c, said) {
			fresh = append(fresh, c)
		}
	}
	if len(fresh) > 0 {
		cands = fresh
	}
	return cands[rng.IntN(len(cands))]
}

func scriptedMentioned(desc string, said []SpyClueLine) bool {
	for _, l := range said {
		if strings.Contains(strings.ToLower(l.Text), strings.ToLower(desc)) {
			return true
		}
	}
	return false
}

func scriptedCivilian(t *SpyTruth, rng *rand.Rand) string {
	var changed, all []string
	for _, it := range t.Pair.Items {
		if it.Original == "" {
			continue
		}
		all = append(all, it.Original)
		if it.Changed() {
			changed = append(changed, it.Original)
		}
	}
	p := t.Prompt
	if len(all) == 0 {
		return fmt.Sprintf("Player %d, civilian, round %d: nothing in my picture can be named.\n\\boxed{My picture shows a scene.}", p.Player, p.Round)
	}
	// A truthful civilian who happens to name a changed object is the spy's danger: half the time.
	cands := all
	if len(changed) > 0 && rng.IntN(2) == 0 {
		cands = changed
	}
	d := scriptedPick(cands, p.Clues, rng)
	return fmt.Sprintf("Player %d, civilian, round %d: my picture has %d things I can name; I will describe the %s.\n\\boxed{I see a %s.}",
		p.Player, p.Round, len(all), d, d)
}

func (sp *ScriptedSpyPolicy) scriptedSpy(t *SpyTruth, rng *rand.Rand) string {
	p := t.Prompt
	if p.SpyImageBlank {
		// The spy sees nothing: it repeats what someone else said, or stays vague.
		var others []string
		for _, l := range p.Clues {
			if !l.Mine && l.Text != NoClue {
				others = append(others, l.Text)
			}
		}
		if len(others) == 0 {
			return fmt.Sprintf("Player %d, spy, round %d: my picture is blank and nobody has spoken; I stay vague.\n\\boxed{There are a few objects.}", p.Player, p.Round)
		}
		c := others[rng.IntN(len(others))]
		return fmt.Sprintf("Player %d, spy, round %d: my picture is blank; I echo another clue.\n\\boxed{%s}", p.Player, p.Round, strings.TrimSuffix(c, "."))
	}
	var safe, slips []string
	for _, it := range t.Pair.Items {
		switch {
		case it.Modified == "":
		case !it.Changed():
			safe = append(safe, it.Modified)
		default:
			slips = append(slips, it.Modified)
		}
	}
	switch {
	case len(slips) > 0 && (len(safe) == 0 || rng.Float64() < sp.SlipRate):
		d := scriptedPick(slips, p.Clues, rng)
		return fmt.Sprintf("Player %d, spy, round %d: I will describe the %s.\n\\boxed{I see a %s.}", p.Player, p.Round, d, d)
	case len(safe) > 0:
		d := scriptedPick(safe, p.Clues, rng)
		return fmt.Sprintf("Player %d, spy, round %d: the %s is surely in every picture; I will describe it.\n\\boxed{I see a %s.}", p.Player, p.Round, d, d)
	}
	return fmt.Sprintf("Player %d, spy, round %d: nothing in my picture can be named.\n\\boxed{My picture shows a scene.}", p.Player, p.Round)
}

// scriptedVote suspects the players whose clues name something the original image does not have.
// It reads only what a real observer has: the original image (its items) and the clues.
func (sp *ScriptedSpyPolicy) scriptedVote(t *SpyTruth, self int, rng *rand.Rand) string {
	p := t.Prompt
	foreign := scriptedForeign(t.Pair)
	var suspects []int
	seen := map[int]bool{}
	for _, l := range p.Clues {
		if l.Player == self || seen[l.Player] {
			continue
		}
		for _, f := range foreign {
			if strings.Contains(strings.ToLower(l.Text), strings.ToLower(f)) {
				suspects, seen[l.Player] = append(suspects, l.Player), true
				break
			}
		}
	}
	who := "the observer"
	if self > 0 {
		who = fmt.Sprintf("player %d", self)
	}
	if len(suspects) > 0 {
		s := suspects[rng.IntN(len(suspects))]
		return fmt.Sprintf("As %s I compared every clue with my picture; player %d described something my picture does not have.\n\\boxed{%d}", who, s, s)
	}
	if rng.Float64() < sp.GuessRate {
		var cands []int
		for q := 1; q <= p.Players; q++ {
			if q != self {
				cands = append(cands, q)
			}
		}
		s := cands[rng.IntN(len(cands))]
		return fmt.Sprintf("As %s I found every clue consistent with my picture, so I guess.\n\\boxed{%d}", who, s)
	}
	return fmt.Sprintf("As %s I found every clue consistent with my picture; I cannot tell.\n\\boxed{N/A}", who)
}

// scriptedForeign are the descriptions of the modified image that match nothing in the
// original: naming one betrays a different picture.
func scriptedForeign(p *data.Pair) []string {
	orig := map[string]bool{}
	for _, it := range p.Items {
		if it.Original != "" {
			orig[strings.ToLower(it.Original)] = true
		}
	}
	var out []string
	for _, it := range p.Items {
		if it.Modified != "" && !orig[strings.ToLower(it.Modified)] {
			out = append(out, it.Modified)
		}
	}
	return out
}
