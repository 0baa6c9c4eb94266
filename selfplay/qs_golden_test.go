package selfplay

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// qsGolden compares got with testdata/name; VZLOCAL_UPDATE_GOLDEN=1 rewrites the file.
func qsGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("VZLOCAL_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (VZLOCAL_UPDATE_GOLDEN=1 writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (VZLOCAL_UPDATE_GOLDEN=1 rewrites it):\n%s", path, got)
	}
}

// TestQSPromptsGolden pins the rendered default prompts: a wording change is a reviewed diff.
func TestQSPromptsGolden(t *testing.T) {
	p, err := LoadQSPrompts("")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, c := range []struct {
		tmpl string
		data QSPromptData
	}{
		{QSQuestionerPrompt, QSPromptData{}},
		{QSSolverPrompt, QSPromptData{Question: "How many cubes are there?\nA) 1\nB) 2\nC) 3\nD) 4"}},
	} {
		out, err := p.Render(c.tmpl, c.data)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("===== " + c.tmpl + "\n" + out + "\n")
	}
	qsGolden(t, "qs_prompts.golden", b.Bytes())
}

// TestQSTranscriptGolden pins the transcript format (and the scripted players) with one
// Questioner step and one Solver step on two images.
func TestQSTranscriptGolden(t *testing.T) {
	e := qsTestEngine(t, func(s *QSSettings) { s.Questions, s.SolverVotes, s.LabelVotes, s.SolverSamples = 2, 4, 4, 2 })
	var imgs []QSImage
	for _, p := range spyTestPairs(t, 2) {
		imgs = append(imgs, QSImage{ID: p.ID, Path: p.Original, Pair: p}) // relative paths: stable text
	}
	ctx := context.Background()
	q, s := NewScriptedQSPolicy(1), NewScriptedQSPolicy(2)
	qs, err := e.PlayQuestioner(ctx, q, s, imgs, 0)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := e.PlaySolver(ctx, q, &ScriptedQSPolicy{Seed: 3, NoiseRate: 0.3}, s, imgs, 1)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for _, st := range []*QSStep{qs, ss} {
		for _, r := range st.Records {
			if err := enc.Encode(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := enc.Encode(st.Summary); err != nil {
			t.Fatal(err)
		}
	}
	qsGolden(t, "qs_transcript.golden", b.Bytes())
}
