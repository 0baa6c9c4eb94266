package selfplay

import (
	"context"
	"testing"
)

// TestQSGameWithTinyModel plays both stages through llama.cpp. The random weights write byte
// noise: every question is invalid (-1, one zero-spread group per image) and nothing reaches the
// Solver stage's filter. With scripted questions, the model's answers without a box make "None"
// the majority, which pays 0. Token ids and behaviour log-probs are recorded for the trainer, and
// the same seed replays the same step.
func TestQSGameWithTinyModel(t *testing.T) {
	pol := tinyLlamaPolicy(t, 3)
	e := qsTestEngine(t, func(s *QSSettings) {
		s.Questions, s.SolverVotes, s.LabelVotes, s.SolverSamples = 2, 3, 3, 2
		s.Question.MaxTokens, s.Answer.MaxTokens = 16, 16
	})
	imgs := qsTestImages(t, 2)
	ctx := context.Background()

	pol.Reseed(21)
	res, err := e.PlayQuestioner(ctx, pol, pol, imgs, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Records {
		if r.Valid || *r.Reward != QSInvalidReward {
			t.Fatalf("noise %q scored as valid (reward %v)", r.Output, *r.Reward)
		}
	}
	for _, g := range res.Groups {
		if !g.ZeroStd || g.Request.Image == "" {
			t.Fatalf("group %s: zero std %v", g.ID, g.ZeroStd)
		}
		for _, c := range g.Completions {
			if len(c.Tokens) == 0 || len(c.Tokens) != len(c.LogProbs) || len(c.ImageSpans) != 1 {
				t.Fatalf("completion without tokens, log-probs or image rows: %d/%d/%d", len(c.Tokens), len(c.LogProbs), len(c.ImageSpans))
			}
		}
	}
	if res.Summary.ValidRate != 0 || res.Summary.FracZeroStd != 1 || res.Rollout.Tokens == 0 {
		t.Fatalf("summary %+v, rollout %+v", res.Summary, res.Rollout)
	}
	pol.Reseed(21)
	again, err := e.PlayQuestioner(ctx, pol, pol, imgs, 0)
	if err != nil {
		t.Fatal(err)
	}
	if qsJSON(t, again.Records) != qsJSON(t, res.Records) {
		t.Fatal("the same seed played another step")
	}

	// Scripted valid questions, model answers.
	honest := &ScriptedQSPolicy{Seed: 1}
	res, err = e.PlayQuestioner(ctx, honest, pol, imgs, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Records {
		if !r.Valid || len(r.Votes) != 3 {
			t.Fatalf("record %+v", r)
		}
		answers := qsAnswerStrings(r.Votes)
		want, _, err := QSQuestionerReward(r.Quick, answers)
		if err != nil || *r.Reward != want {
			t.Fatalf("reward %v for answers %q, the rules say %v (%v)", *r.Reward, answers, want, err)
		}
	}
	sres, err := e.PlaySolver(ctx, pol, pol, pol, imgs, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(sres.Records) != 2 || len(sres.Groups) != 0 || sres.Summary.Kept != 0 {
		t.Fatalf("solver stage on noise: %d records, %d groups, summary %+v", len(sres.Records), len(sres.Groups), sres.Summary)
	}
	sres, err = e.PlaySolver(ctx, honest, pol, pol, imgs, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range sres.Records {
		if r.Label == nil {
			t.Fatalf("valid question without a label: %+v", r)
		}
		if r.Label.Keep != (len(r.Solver) == 2) {
			t.Fatalf("label %+v with %d solver answers", *r.Label, len(r.Solver))
		}
	}
}
