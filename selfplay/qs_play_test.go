package selfplay

import (
	"bytes"
	"context"
	"encoding/json"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestQSPlayScripted(t *testing.T) {
	prompts, err := LoadQSPrompts("")
	if err != nil {
		t.Fatal(err)
	}
	pairs := spyTestPairs(t, 3)
	imgs, err := LoadQSImages(pairs[0].Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 3 || imgs[0].Pair == nil || imgs[0].Path != pairs[0].OriginalPath() {
		t.Fatalf("pool %+v", imgs)
	}
	run := func(out string) (*QSPlayResult, string, []byte) {
		var buf bytes.Buffer
		s := DefaultQSSettings()
		s.Seed = 4
		res, err := RunQSPlay(context.Background(), QSPlayConfig{
			Settings: s, Prompts: prompts, Images: imgs, Count: 5, Batch: 2, OutDir: out, Out: &buf,
		}, NewScriptedQSPolicy(1), NewScriptedQSPolicy(2))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(res.File)
		if err != nil {
			t.Fatal(err)
		}
		return res, buf.String(), b
	}
	res, shown, file := run(t.TempDir())
	if len(res.Steps) != 6 {
		t.Fatalf("%d steps, want 3 batches x 2 stages", len(res.Steps))
	}
	var questions, steps int
	for _, line := range strings.Split(strings.TrimSpace(string(file)), "\n") {
		var v struct {
			Kind  string `json:"kind"`
			Stage string `json:"stage"`
		}
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		switch v.Kind {
		case QSKindQuestion:
			questions++
		case QSKindStep:
			steps++
		default:
			t.Fatalf("line of kind %q", v.Kind)
		}
	}
	if questions != 5*4+5 || steps != 6 {
		t.Fatalf("%d question lines and %d step lines, want 25 and 6", questions, steps)
	}
	for _, want := range []string{"key ", "majority", "reward", "label", "previous solver:", "questioner step 0:", "solver step 2:"} {
		if !strings.Contains(shown, want) {
			t.Errorf("transcript lacks %q:\n%s", want, shown)
		}
	}
	if res.Questioner.Questions != 20 || res.Solver.Questions != 5 || res.Solver.Images != 5 {
		t.Fatalf("session summaries %+v %+v", res.Questioner, res.Solver)
	}
	_, shown2, file2 := run(t.TempDir())
	if shown2 != shown || !bytes.Equal(file, file2) {
		t.Fatal("the same seed played another session")
	}

	if _, err := RunQSPlay(context.Background(), QSPlayConfig{Settings: DefaultQSSettings(), Prompts: prompts, Images: imgs}, nil, nil); err == nil {
		t.Error("zero images to play accepted")
	}
	if _, err := RunQSPlay(context.Background(), QSPlayConfig{Settings: DefaultQSSettings(), Prompts: prompts, Count: 1}, nil, nil); err == nil {
		t.Error("empty pool accepted")
	}
}

func TestLoadQSImages(t *testing.T) {
	dir := t.TempDir()
	spyWritePNG(t, filepath.Join(dir, "b.png"), color.Black)
	spyWritePNG(t, filepath.Join(dir, "a.png"), color.White)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	imgs, err := LoadQSImages(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 || imgs[0].ID != "a" || imgs[1].Path != filepath.Join(dir, "b.png") || imgs[0].Pair != nil {
		t.Fatalf("pool %+v", imgs)
	}
	for _, bad := range []string{t.TempDir(), filepath.Join(dir, "a.png"), filepath.Join(dir, "missing")} {
		if _, err := LoadQSImages(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	broken := t.TempDir()
	os.WriteFile(filepath.Join(broken, "index.jsonl"), []byte("{not json\n"), 0o644)
	if _, err := LoadQSImages(broken); err == nil {
		t.Error("broken pair folder accepted")
	}
}
