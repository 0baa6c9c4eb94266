package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/vzlocal/vzlocal/data"
	"github.com/vzlocal/vzlocal/llm/testmodel"
	"github.com/vzlocal/vzlocal/selfplay"
)

func runPlay(t *testing.T, args ...string) error {
	t.Helper()
	var c cli
	p, err := kong.New(&c, kong.Exit(func(int) { t.Fatal("exit") }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := p.Parse(append([]string{"play", "--color", "never"}, args...))
	if err != nil {
		return err
	}
	return ctx.Run()
}

func TestPlayQSScripted(t *testing.T) {
	pairs := t.TempDir()
	if _, err := data.GenerateCLEVR(pairs, data.CLEVROptions{N: 2, Seed: 3, Workers: 1, Width: 96, Height: 64}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := runPlay(t, "--game", "qs", "--images", pairs, "--scripted", "--games", "2", "--batch", "2", "--out", out, "--qs-solver-votes", "6"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, selfplay.QSGamesFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2*4+2+2 { // questions of both stages and one summary per stage
		t.Fatalf("%d transcript lines", len(lines))
	}
	var r selfplay.QSRecord
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil || r.Kind != selfplay.QSKindQuestion || r.Stage != selfplay.StageQuestioner {
		t.Fatalf("first line %s: %v", lines[0], err)
	}
	if r.Valid && len(r.Votes) != 6 {
		t.Fatalf("--qs-solver-votes 6 gave %d votes", len(r.Votes))
	}

	for _, bad := range [][]string{
		{"--html", filepath.Join(out, "x.html")},
		{"--qs-min-confidence", "0.9", "--qs-max-confidence", "0.5"},
		{"--qs-questions", "0"},
		{"--temperature", "0.5"}, // the spy game's; --qs-temperature is the qs game's
		{"--players", "5"},
	} {
		args := append([]string{"--game", "qs", "--images", pairs, "--scripted", "--out", t.TempDir()}, bad...)
		if err := runPlay(t, args...); err == nil {
			t.Errorf("play %v accepted", bad)
		}
	}

	if err := runPlay(t, "--images", pairs, "--scripted", "--out", t.TempDir(), "--qs-questions", "2"); err == nil {
		t.Error("the spy game accepted --qs-questions")
	}

	// Without --game the spy game plays, as before.
	spyOut := t.TempDir()
	if err := runPlay(t, "--images", pairs, "--scripted", "--games", "1", "--out", spyOut); err != nil {
		t.Fatal(err)
	}
	games, err := selfplay.ReadSpyGames(filepath.Join(spyOut, selfplay.SpyGamesFile))
	if err != nil || len(games) != 1 || games[0].Players != 4 {
		t.Fatalf("spy game: %d games, %v", len(games), err)
	}
}

// TestPlayQSTinyModel plays through llama.cpp with the tiny test model in both roles: its noise
// is never a question, so every question is invalid and scored -1.
func TestPlayQSTinyModel(t *testing.T) {
	files, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "llava", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	pairs := t.TempDir()
	if _, err := data.GenerateCLEVR(pairs, data.CLEVROptions{N: 1, Seed: 3, Workers: 1, Width: 96, Height: 64}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := runPlay(t, "--game", "qs", "--images", pairs, "--model", files.Text, "--mmproj", files.MMProj, "--threads", "1",
		"--games", "1", "--out", out, "--qs-questions", "2", "--qs-max-tokens", "8"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, selfplay.QSGamesFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2+1+2 {
		t.Fatalf("%d transcript lines", len(lines))
	}
	var r selfplay.QSRecord
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil || r.Valid || r.Reward == nil || *r.Reward != selfplay.QSInvalidReward {
		t.Fatalf("first question %s: %v", lines[0], err)
	}
}
