package selfplay

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
)

// ScriptedQSPolicy plays the Questioner/Solver game from the pair's item descriptions instead of
// looking at the image, so the game can be tested and watched without a model. The Questioner
// asks which of four things is in the picture (one of the image's items and three things that are
// not); the Solver finds the option that names an item. Noise makes games with every reward:
// invalid questions, wrong quick answers, wrong and missing Solver answers. Choices are random but
// fixed by Seed and the request, never by the order or the batch the requests come in.
type ScriptedQSPolicy struct {
	Seed int64
	// InvalidRate is the chance that a question breaks the format (an option or a tag missing).
	InvalidRate float64
	// WrongKeyRate is the chance that the Questioner's quick answer is a wrong letter.
	WrongKeyRate float64
	// NoiseRate is the chance that a Solver answer is a random letter; NoBoxRate that it has no
	// \boxed{} at all.
	NoiseRate float64
	NoBoxRate float64
}

var _ Policy = (*ScriptedQSPolicy)(nil)

// NewScriptedQSPolicy returns a scripted player with 10% invalid questions, 20% wrong quick
// answers, 30% random Solver letters and 10% Solver answers without a box.
func NewScriptedQSPolicy(seed int64) *ScriptedQSPolicy {
	return &ScriptedQSPolicy{Seed: seed, InvalidRate: 0.1, WrongKeyRate: 0.2, NoiseRate: 0.3, NoBoxRate: 0.1}
}

// qsDistractors are things no test image shows: options when an image offers too few of its own.
var qsDistractors = []string{
	"a purple elephant", "a wooden rowing boat", "a yellow taxi", "a snowy mountain peak",
	"a bowl of oranges", "a red bicycle", "a sleeping cat", "a lighthouse",
}

// qsNoneOption is the correct option of a question about an image without nameable items.
const qsNoneOption = "none of the other options"

// Complete answers Questioner and Solver requests; any other request is an error.
func (sp *ScriptedQSPolicy) Complete(_ context.Context, reqs []Request) ([][]Completion, error) {
	out := make([][]Completion, len(reqs))
	for i, r := range reqs {
		t, ok := r.Truth.(*QSTruth)
		if !ok || t == nil {
			return nil, fmt.Errorf("scripted qs policy: request %d (%s) carries no questioner/solver truth", i, r.Role)
		}
		n := max(r.N, 1)
		out[i] = make([]Completion, n)
		for k := range n {
			rng := sp.rng(t, r, k)
			var text string
			switch r.Role {
			case RoleQuestioner:
				text = sp.question(t, rng)
			case RoleSolver:
				if t.Question == nil {
					return nil, fmt.Errorf("scripted qs policy: solver request %d has no question", i)
				}
				text = sp.answer(t, rng)
			default:
				return nil, fmt.Errorf("scripted qs policy: role %q is not a questioner/solver role", r.Role)
			}
			out[i][k] = Completion{Text: text, Finish: "stop"}
		}
	}
	return out, nil
}

func (sp *ScriptedQSPolicy) rng(t *QSTruth, r Request, k int) *rand.Rand {
	h := fnv.New64a()
	q := ""
	if t.Question != nil {
		q = t.Question.Question
	}
	fmt.Fprintf(h, "%d/%s/%d/%d/%d/%d/%d/%s/%s", sp.Seed, r.Role, r.N, t.Step, t.Slot, t.Index, k, t.Image.ID, q)
	return rand.New(rand.NewPCG(h.Sum64(), uint64(sp.Seed)))
}

// qsItemsOf are the descriptions of what the image shows.
func qsItemsOf(t *QSTruth) []string {
	if t.Image.Pair == nil {
		return nil
	}
	var out []string
	for _, it := range t.Image.Pair.Items {
		if it.Original != "" {
			out = append(out, it.Original)
		}
	}
	return out
}

func (sp *ScriptedQSPolicy) question(t *QSTruth, rng *rand.Rand) string {
	items := qsItemsOf(t)
	shown := map[string]bool{}
	for _, it := range items {
		shown[strings.ToLower(it)] = true
	}
	// Distractors: what the modified image has and this one does not, then the fixed list.
	var others []string
	if t.Image.Pair != nil {
		for _, it := range t.Image.Pair.Items {
			if it.Modified != "" && !shown[strings.ToLower(it.Modified)] {
				others = append(others, it.Modified)
			}
		}
	}
	rng.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
	fixed := append([]string(nil), qsDistractors...)
	rng.Shuffle(len(fixed), func(i, j int) { fixed[i], fixed[j] = fixed[j], fixed[i] })
	others = append(others, fixed...)

	correct := qsNoneOption
	if len(items) > 0 {
		correct = items[rng.IntN(len(items))]
	}
	key := rng.IntN(4)
	var opts [4]string
	used := map[string]bool{strings.ToLower(correct): true}
	next := 0
	for i := range opts {
		if i == key {
			opts[i] = correct
			continue
		}
		for used[strings.ToLower(others[next])] {
			next++
		}
		opts[i] = others[next]
		used[strings.ToLower(others[next])] = true
	}
	quick := key
	if rng.Float64() < sp.WrongKeyRate {
		quick = (key + 1 + rng.IntN(3)) % 4
	}
	desc := fmt.Sprintf("The picture shows %d things I can name.", len(items))
	stem := "Which of these is in the picture?"
	invalid := rng.Float64() < sp.InvalidRate
	var b strings.Builder
	for i, o := range opts {
		if invalid && i == 3 && rng.IntN(2) == 0 {
			break // the classic format error: the last option forgotten
		}
		fmt.Fprintf(&b, " %c) %s", 'A'+i, o)
	}
	answer := fmt.Sprintf("<answer>%c</answer>", 'A'+quick)
	if invalid && b.Len() > 0 && strings.Contains(b.String(), "D)") {
		answer = "The answer is " + string(rune('A'+quick)) + "." // the answer tag forgotten
	}
	return fmt.Sprintf("Description: %s\n<question>%s%s</question>\n%s", desc, stem, b.String(), answer)
}

func (sp *ScriptedQSPolicy) answer(t *QSTruth, rng *rand.Rand) string {
	q := t.Question
	shown := map[string]bool{}
	for _, it := range qsItemsOf(t) {
		shown[strings.ToLower(it)] = true
	}
	pick := -1
	for i, o := range q.Options {
		if shown[strings.ToLower(o)] {
			pick = i
			break
		}
	}
	if pick < 0 {
		for i, o := range q.Options {
			if strings.EqualFold(o, qsNoneOption) {
				pick = i
				break
			}
		}
	}
	reason := "I compared every option with the picture"
	if pick < 0 || rng.Float64() < sp.NoiseRate {
		pick, reason = rng.IntN(4), "I am not sure, so I guess"
	}
	if rng.Float64() < sp.NoBoxRate {
		return fmt.Sprintf("%s; it looks like option %c.", reason, 'A'+pick)
	}
	return fmt.Sprintf("%s; option %c) %s fits.\n\\boxed{%c}", reason, 'A'+pick, q.Options[pick], 'A'+pick)
}
