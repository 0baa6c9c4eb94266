package selfplay

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunSpyPlay(t *testing.T) {
	pairs := spyTestPairs(t, 3)
	prompts, err := LoadSpyPrompts("")
	if err != nil {
		t.Fatal(err)
	}
	run := func(out string) (*SpyPlayResult, string) {
		var transcript bytes.Buffer
		s := DefaultSpySettings()
		s.Seed = 11
		res, err := RunSpyPlay(context.Background(), SpyPlayConfig{
			Settings: s, Prompts: prompts, Pairs: pairs, Games: 5, Batch: 2,
			OutDir: out, HTML: filepath.Join(out, "report.html"), Out: &transcript,
		}, NewScriptedSpyPolicy(11))
		if err != nil {
			t.Fatal(err)
		}
		return res, transcript.String()
	}
	dir := t.TempDir()
	res, transcript := run(filepath.Join(dir, "a"))
	if res.Summary.Games != 5 || len(res.Games) != 5 {
		t.Fatalf("%d games, summary %+v", len(res.Games), res.Summary)
	}
	back, err := ReadSpyGames(res.File)
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range back {
		if g.ID != i || !g.Scored {
			t.Errorf("line %d: game %d scored %v", i+1, g.ID, g.Scored)
		}
		checkSpyRules(t, g)
	}
	if !strings.Contains(transcript, "Game 4") || !strings.Contains(transcript, "clue rewards") {
		t.Errorf("transcript incomplete:\n%s", transcript)
	}
	if _, err := os.Stat(filepath.Join(dir, "a", "report.html")); err != nil {
		t.Error(err)
	}
	// The same seed plays the same session.
	res2, _ := run(filepath.Join(dir, "b"))
	a, _ := os.ReadFile(res.File)
	b, _ := os.ReadFile(res2.File)
	if !bytes.Equal(a, b) {
		t.Error("games.jsonl differs between two sessions with the same seed")
	}
	// Baselines carry from game to game within a session.
	if res.Games[4].BaselineSpy == res.Games[0].BaselineSpy {
		t.Error("RAE baselines did not move across games")
	}

	if _, err := RunSpyPlay(context.Background(), SpyPlayConfig{Settings: DefaultSpySettings(), Prompts: prompts, Games: 1}, NewScriptedSpyPolicy(1)); err == nil || !strings.Contains(err.Error(), "no usable pairs") {
		t.Errorf("no pairs: err = %v", err)
	}
}

func TestLoadSpyPairs(t *testing.T) {
	work := t.TempDir()
	empty := t.TempDir()
	if _, err := LoadSpyPairs(empty, work, 1); err == nil || !strings.Contains(err.Error(), "no pairs") {
		t.Errorf("empty folder: err = %v", err)
	}
	if _, err := LoadSpyPairs(filepath.Join(empty, "nope"), work, 1); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing folder: err = %v", err)
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "x.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSpyPairs(bad, work, 1); err == nil || !strings.Contains(err.Error(), "x.json") {
		t.Errorf("bad pair file: err = %v", err)
	}
	pairs := spyTestPairs(t, 2)
	got, err := LoadSpyPairs(pairs[0].Dir(), work, 1)
	if err != nil || len(got) != 2 {
		t.Fatalf("pair folder: %d pairs, err %v", len(got), err)
	}
	// A folder of plain photos becomes pairs with automatic edits.
	photos := t.TempDir()
	for i, name := range []string{"a.png", "b.png"} {
		img := image.NewRGBA(image.Rect(0, 0, 96, 72))
		for y := range 72 {
			for x := range 96 {
				img.Set(x, y, color.RGBA{uint8(2 * x), uint8(3 * y), uint8(100 * i), 255})
			}
		}
		f, err := os.Create(filepath.Join(photos, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	got, err = LoadSpyPairs(photos, work, 1)
	if err != nil {
		t.Fatalf("photo folder: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("photo folder: %d pairs, want 2", len(got))
	}
	e := spyTestEngine(t, nil)
	games := playScored(t, e, NewScriptedSpyPolicy(1), got, 0)
	checkSpyRules(t, games[0])
}
