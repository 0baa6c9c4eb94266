package selfplay

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSpyPromptsGolden pins the rendered default prompts, so a wording change is a reviewed diff of
// testdata/spy_prompts.golden. VZLOCAL_UPDATE_GOLDEN=1 rewrites the file.
func TestSpyPromptsGolden(t *testing.T) {
	p, err := LoadSpyPrompts("")
	if err != nil {
		t.Fatal(err)
	}
	d := sampleSpyData()
	spy := d
	spy.IsSpy, spy.Role, spy.SpyImageBlank = true, RoleSpy, true
	first := SpyPromptData{Player: 1, Players: 4, Round: 1, Rounds: 2, Role: RoleCivilian}
	obs := SpyPromptData{Players: 4, Rounds: 2, Role: RoleObserver, Clues: d.Clues}
	voter := d
	voter.Round, voter.Role = 0, RoleVoter
	cases := []struct {
		title, tmpl string
		data        SpyPromptData
	}{
		{"system", SpySystemPrompt, d},
		{"clue: first speaker", SpyCluePrompt, first},
		{"clue: civilian, round 2", SpyCluePrompt, d},
		{"clue: spy with a blank image, round 2", SpyCluePrompt, spy},
		{"observer", SpyObserverPrompt, obs},
		{"voter", SpyVoterPrompt, voter},
	}
	var b strings.Builder
	for _, c := range cases {
		out, err := p.Render(c.tmpl, c.data)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("===== " + c.title + " (" + c.tmpl + ")\n" + out + "\n")
	}
	path := filepath.Join("testdata", "spy_prompts.golden")
	if os.Getenv("VZLOCAL_UPDATE_GOLDEN") == "1" {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (VZLOCAL_UPDATE_GOLDEN=1 writes it)", err)
	}
	if b.String() != string(want) {
		t.Errorf("rendered prompts differ from %s (VZLOCAL_UPDATE_GOLDEN=1 rewrites it):\n%s", path, b.String())
	}
}
