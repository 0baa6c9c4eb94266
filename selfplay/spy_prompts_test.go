package selfplay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSpyDefaultPromptsShowWhatTheRulesSay(t *testing.T) {
	p, err := LoadSpyPrompts("")
	if err != nil {
		t.Fatal(err)
	}
	d := sampleSpyData()
	civ, err := p.Render(SpyCluePrompt, d)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"player 2 of 4", "round 2 of 2", "CIVILIAN", sampleClueMarker, sampleNoteMarker, `\boxed{`} {
		if !strings.Contains(civ, want) {
			t.Errorf("clue prompt lacks %q:\n%s", want, civ)
		}
	}
	d.IsSpy = true
	spy, _ := p.Render(SpyCluePrompt, d)
	if !strings.Contains(spy, "SPY") {
		t.Errorf("spy prompt does not tell the role:\n%s", spy)
	}
	obs, _ := p.Render(SpyObserverPrompt, SpyPromptData{Players: 4, Clues: d.Clues})
	if !strings.Contains(obs, `\boxed{N/A}`) || !strings.Contains(obs, sampleClueMarker) {
		t.Errorf("observer prompt lacks the abstain format or the clues:\n%s", obs)
	}
}

func spyWritePrompt(t *testing.T, dir, name, text string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSpyPromptOverride(t *testing.T) {
	dir := t.TempDir()
	spyWritePrompt(t, dir, SpyObserverPrompt, `JUDGE {{.Players}}:{{range .Clues}} [{{.Player}}] {{.Text}}{{end}} answer \boxed{k} or \boxed{N/A}`)
	spyWritePrompt(t, dir, "qs_questioner.tmpl", "{{ this is another game's file and is ignored")
	p, err := LoadSpyPrompts(dir)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Render(SpyObserverPrompt, SpyPromptData{Players: 4, Clues: []SpyClueLine{{Round: 1, Player: 2, Text: "a cube"}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `JUDGE 4: [2] a cube answer \boxed{k} or \boxed{N/A}`; out != want {
		t.Errorf("override renders %q, want %q", out, want)
	}
	// The templates not overridden stay the embedded ones.
	clue, _ := p.Render(SpyCluePrompt, sampleSpyData())
	if !strings.Contains(clue, "CIVILIAN") {
		t.Errorf("clue prompt is not the default one:\n%s", clue)
	}
}

func TestSpyPromptRejected(t *testing.T) {
	tests := []struct {
		name, file, text, want string
	}{
		{"syntax", SpyCluePrompt, `{{if .IsSpy}}unclosed`, "unexpected EOF"},
		{"unknown field", SpyObserverPrompt, `{{.Nope}} \boxed{}`, "can't evaluate field Nope"},
		{"no own reasoning", SpyCluePrompt, `P{{.Player}} {{if .IsSpy}}spy{{end}} {{range .Clues}}{{.Text}}{{end}} \boxed{}`, "own earlier reasoning"},
		{"no role", SpyCluePrompt, `P{{.Player}} {{range .Clues}}{{.Text}}{{end}}{{range .OwnNotes}}{{.Reasoning}}{{end}} \boxed{}`, "same for the spy and a civilian"},
		{"no clues", SpyObserverPrompt, `judge {{.Players}} \boxed{N/A}`, "does not show the clues"},
		{"no box", SpyVoterPrompt, `P{{.Player}} {{range .Clues}}{{.Text}}{{end}} answer with a number`, `\boxed{...}`},
		{"no player", SpyVoterPrompt, `{{range .Clues}}{{.Text}}{{end}} \boxed{}`, "(.Player)"},
		{"unknown file", "spy_judge.tmpl", `x`, "unknown spy game template spy_judge.tmpl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			spyWritePrompt(t, dir, tt.file, tt.text)
			_, err := LoadSpyPrompts(dir)
			if err == nil {
				t.Fatalf("template accepted: %s", tt.text)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if tt.file != "spy_judge.tmpl" && !strings.Contains(err.Error(), filepath.Join(dir, tt.file)) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	if _, err := LoadSpyPrompts(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "prompt folder") {
		t.Errorf("missing folder: err = %v", err)
	}
}
