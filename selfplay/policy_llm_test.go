package selfplay

import (
	"context"
	"testing"

	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// tinyLlamaPolicy loads the tiny llava-style test model (1 thread: the CI box has 2 cores).
func tinyLlamaPolicy(t *testing.T, seed uint64) *LlamaPolicy {
	t.Helper()
	files, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "llava", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := OpenLlamaPolicy(files.Text, files.MMProj, llm.Options{Threads: 1, ContextSize: 4096, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	p.Default.MaxTokens = 24
	return p
}

// TestSpyGameWithTinyModel plays whole games through llama.cpp: random weights emit byte noise,
// which must be played by the rules (placeholder clues, invalid votes), with token ids, behaviour
// log-probs and image rows recorded for the trainer, and the same seed must replay the same game.
func TestSpyGameWithTinyModel(t *testing.T) {
	pol := tinyLlamaPolicy(t, 5)
	e := spyTestEngine(t, func(s *SpySettings) {
		s.ObserverSamples = 4
		s.Clue.MaxTokens, s.Decide.MaxTokens = 24, 24
	})
	pairs := spyTestPairs(t, 2)
	pol.Reseed(11)
	first := playScored(t, e, pol, pairs, 0)
	for _, g := range first {
		checkSpyRules(t, g)
		if len(g.Samples) != g.Players*g.Rounds+4 {
			t.Fatalf("game %d: %d samples, want %d", g.ID, len(g.Samples), g.Players*g.Rounds+4)
		}
		for _, s := range g.Samples {
			if len(s.Tokens) == 0 || len(s.Tokens) != len(s.LogProbs) {
				t.Fatalf("sample %+v: %d tokens, %d log-probs", s.Turn, len(s.Tokens), len(s.LogProbs))
			}
			if len(s.ImageSpans) != 1 || s.ImageSpans[0].Rows != 16 {
				t.Fatalf("sample turn %d: image spans %+v, want one span of 16 rows", s.Turn, s.ImageSpans)
			}
			sp := s.ImageSpans[0]
			for i := sp.Pos; i < sp.Pos+sp.Rows; i++ {
				if s.PromptTokens[i] != llm.ImageRow {
					t.Fatalf("prompt token %d is %d, want an image row", i, s.PromptTokens[i])
				}
			}
			for _, lp := range s.LogProbs {
				if lp > 0 || lp != lp {
					t.Fatalf("behaviour log-prob %v", lp)
				}
			}
		}
	}
	pol.Reseed(11)
	again := playScored(t, e, pol, pairs, 0)
	for i := range first {
		for k, s := range first[i].Samples {
			if s.Text != again[i].Samples[k].Text {
				t.Fatalf("game %d sample %d differs between two runs with the same seed", i, k)
			}
		}
	}
	pol.Reseed(12)
	other := playScored(t, e, pol, pairs, 0)
	same := true
	for k, s := range first[0].Samples {
		same = same && s.Text == other[0].Samples[k].Text
	}
	if same {
		t.Fatal("another seed replayed the same game")
	}
}

// TestLlamaPolicyPromptMatchesSample checks that the trainer can rebuild a sample's exact input.
func TestLlamaPolicyPromptMatchesSample(t *testing.T) {
	pol := tinyLlamaPolicy(t, 1)
	pairs := spyTestPairs(t, 1)
	req := Request{System: "You are player 1.", User: "Describe the image.", Image: pairs[0].OriginalPath(), N: 2, MaxTokens: 8}
	out, err := pol.Complete(context.Background(), []Request{req})
	if err != nil {
		t.Fatal(err)
	}
	pr, err := pol.Prompt(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(pr.Tokens) != len(out[0][0].PromptTokens) {
		t.Fatalf("rebuilt prompt has %d tokens, sample %d", len(pr.Tokens), len(out[0][0].PromptTokens))
	}
	if _, err := pol.Complete(context.Background(), []Request{{User: "x", Image: "/nonexistent.png", N: 1}}); err == nil {
		t.Fatal("missing image accepted")
	}
}
