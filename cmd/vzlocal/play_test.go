package main

import (
	"path/filepath"
	"testing"

	"github.com/vzlocal/vzlocal/data"
	"github.com/vzlocal/vzlocal/llm/testmodel"
	"github.com/vzlocal/vzlocal/selfplay"
)

// TestPlaySpyTinyModel is `vzlocal play` end to end: generated CLEVR pairs, the tiny test model
// through llama.cpp, and every recorded game checked against the rules (turn order, what each
// player sees, votes, zero-sum clue rewards) from games.jsonl.
func TestPlaySpyTinyModel(t *testing.T) {
	pairs := t.TempDir()
	if _, err := data.GenerateCLEVR(pairs, data.CLEVROptions{N: 3, Seed: 2, Workers: 1}); err != nil {
		t.Fatal(err)
	}
	files, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "llava", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	html := filepath.Join(out, "report.html")
	if err := runPlay(t, "--images", pairs, "--model", files.Text, "--mmproj", files.MMProj, "--threads", "1",
		"--games", "3", "--batch", "3", "--out", out, "--html", html); err != nil {
		t.Fatal(err)
	}
	games, err := selfplay.ReadSpyGames(filepath.Join(out, selfplay.SpyGamesFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(games) != 3 {
		t.Fatalf("%d games recorded, want 3", len(games))
	}
	for _, g := range games {
		if err := selfplay.CheckSpyGame(g); err != nil {
			t.Fatal(err)
		}
		for _, s := range g.Samples {
			if len(s.Tokens) == 0 || len(s.Tokens) != len(s.LogProbs) {
				t.Fatalf("game %d: a sample without token ids or behaviour log-probs", g.ID)
			}
		}
	}
}
