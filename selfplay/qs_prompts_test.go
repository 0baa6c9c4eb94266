package selfplay

import (
	"strings"
	"testing"
)

func TestQSDefaultPrompts(t *testing.T) {
	p, err := LoadQSPrompts("")
	if err != nil {
		t.Fatal(err)
	}
	q, err := p.Render(QSQuestionerPrompt, QSPromptData{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<question>", "</question>", "<answer>", "A) ", "D) "} {
		if !strings.Contains(q, want) {
			t.Errorf("questioner prompt lacks %q:\n%s", want, q)
		}
	}
	s, err := p.Render(QSSolverPrompt, QSPromptData{Question: "How many? A) 1 B) 2 C) 3 D) 4"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s, "How many? A) 1 B) 2 C) 3 D) 4") || !strings.Contains(s, `\boxed{`) {
		t.Errorf("solver prompt lacks the question or the box:\n%s", s)
	}
	_, names := QSPromptFiles()
	if len(names) != 2 {
		t.Errorf("prompt files %v", names)
	}
}

func TestQSPromptOverride(t *testing.T) {
	dir := t.TempDir()
	spyWritePrompt(t, dir, QSSolverPrompt, `Q: {{.Question}} -> \boxed{X}`)
	spyWritePrompt(t, dir, SpyCluePrompt, "{{ another game's file: ignored here")
	spyWritePrompt(t, dir, "notes.txt", "ignored")
	p, err := LoadQSPrompts(dir)
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := p.Render(QSSolverPrompt, QSPromptData{Question: "why?"}); out != `Q: why? -> \boxed{X}` {
		t.Errorf("override renders %q", out)
	}
	if q, _ := p.Render(QSQuestionerPrompt, QSPromptData{}); !strings.Contains(q, "<question>") {
		t.Error("the questioner template not overridden is no longer the embedded one")
	}
}

func TestQSPromptOverrideRejected(t *testing.T) {
	cases := []struct{ name, file, text, want string }{
		{"parse error", QSSolverPrompt, "{{.Question", "qs_solver.tmpl"},
		{"unknown field", QSSolverPrompt, `{{.Answer}} \boxed{}`, "Answer"},
		{"no question shown", QSSolverPrompt, `Answer in \boxed{X}.`, "does not show the question"},
		{"no box", QSSolverPrompt, `{{.Question}} answer with a letter`, `\boxed`},
		{"no question tag", QSQuestionerPrompt, "Write A) B) C) D) and <answer>X</answer>", "<question>"},
		{"no answer tag", QSQuestionerPrompt, "<question>... A) B) C) D)</question>", "<answer>"},
		{"no options", QSQuestionerPrompt, "<question>...</question><answer>X</answer>", "four options"},
		{"unknown qs file", "qs_judge.tmpl", "x", "unknown questioner/solver template"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			spyWritePrompt(t, dir, c.file, c.text)
			_, err := LoadQSPrompts(dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
	if _, err := LoadQSPrompts("/nonexistent/prompts"); err == nil {
		t.Error("missing prompt folder accepted")
	}
}

// TestSpyPromptsIgnoreQSFiles: a prompt folder may hold both games' templates.
func TestSpyPromptsIgnoreQSFiles(t *testing.T) {
	dir := t.TempDir()
	spyWritePrompt(t, dir, QSQuestionerPrompt, "<question> A) D) </question><answer>X</answer>")
	spyWritePrompt(t, dir, QSSolverPrompt, `{{.Question}} \boxed{}`)
	if _, err := LoadSpyPrompts(dir); err != nil {
		t.Fatalf("spy prompts refused a folder with qs templates: %v", err)
	}
	if _, err := LoadQSPrompts(dir); err != nil {
		t.Fatal(err)
	}
}
