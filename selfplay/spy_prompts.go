package selfplay

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// The default prompts of the spy game. Our own wording; the structure and the output formats
// (private reasoning, then \boxed{...}) are those of games.md 1.1, which the parsers rely on.
//
//go:embed prompts/spy_*.tmpl
var spyPromptFS embed.FS

// Names of the spy game's prompt templates; `--prompts DIR` may override any of them.
const (
	SpySystemPrompt   = "spy_system.tmpl"
	SpyCluePrompt     = "spy_clue.tmpl"
	SpyObserverPrompt = "spy_observer.tmpl"
	SpyVoterPrompt    = "spy_voter.tmpl"
)

var spyPromptNames = []string{SpySystemPrompt, SpyCluePrompt, SpyObserverPrompt, SpyVoterPrompt}

// SpyPromptData is what every spy game template is executed with.
type SpyPromptData struct {
	Player        int // the speaking or voting player (0 for the observer)
	Players       int
	Round         int // clue round, 1-based (0 in the decision stage)
	Rounds        int
	IsSpy         bool
	Role          string
	SpyImageBlank bool
	Clues         []SpyClueLine // every earlier clue, answers only
	OwnNotes      []SpyNote     // this player's own earlier private reasoning, and nobody else's
}

// SpyClueLine is one clue as other players see it.
type SpyClueLine struct {
	Round  int
	Player int
	Text   string
	Mine   bool // said by the player the prompt is for
}

// SpyNote is one earlier private reasoning of the player the prompt is for.
type SpyNote struct {
	Round     int
	Reasoning string
}

// SpyPrompts are the parsed, checked templates of the spy game.
type SpyPrompts struct {
	*promptSet
}

// LoadSpyPrompts parses the embedded templates, replaced by the files of the same name in dir when
// dir is not empty. Every template is executed on sample games at load time: one that does not
// parse, fails to execute or leaves out something a player must see is rejected here, not in the
// middle of a run. Files in dir that do not start with "spy_" belong to other games and are ignored.
func LoadSpyPrompts(dir string) (*SpyPrompts, error) {
	set, err := loadPromptSet(spyPromptFS, "spy game", "spy_", spyPromptNames, dir)
	if err != nil {
		return nil, err
	}
	p := &SpyPrompts{set}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

// Render executes one template.
func (p *SpyPrompts) Render(name string, d SpyPromptData) (string, error) { return p.render(name, d) }

// Markers of the sample games the templates are checked with.
const (
	sampleClueMarker = "sample clue 7f3a: a small red cube"
	sampleNoteMarker = "sample private note 9c1e: my picture has a cube"
)

// sampleSpyData is a mid-game state: player 2 in round 2, with clues of every player and a note of
// its own from round 1.
func sampleSpyData() SpyPromptData {
	return SpyPromptData{
		Player: 2, Players: 4, Round: 2, Rounds: 2, Role: RoleCivilian,
		Clues: []SpyClueLine{
			{Round: 1, Player: 1, Text: sampleClueMarker},
			{Round: 1, Player: 2, Text: "a blue sphere", Mine: true},
			{Round: 1, Player: 3, Text: "a green cylinder"},
			{Round: 1, Player: 4, Text: "two cubes"},
		},
		OwnNotes: []SpyNote{{Round: 1, Reasoning: sampleNoteMarker}},
	}
}

// check executes every template on sample data and rejects templates that leave out what the
// rules say a player sees, or the answer format the parsers read.
func (p *SpyPrompts) check() error {
	var errs []string
	render := func(name string, d SpyPromptData) string {
		out, err := p.Render(name, d)
		if err != nil {
			errs = append(errs, err.Error())
		}
		return out
	}
	need := func(name string, ok bool, what string) {
		if !ok {
			errs = append(errs, fmt.Sprintf("prompt %s: %s", p.sources[name], what))
		}
	}
	base := sampleSpyData()
	// The system prompt has no required content, but it must execute.
	render(SpySystemPrompt, base)
	blank := base
	blank.SpyImageBlank = true
	render(SpySystemPrompt, blank)

	civ := render(SpyCluePrompt, base)
	spy := base
	spy.IsSpy, spy.Role = true, RoleSpy
	other := base
	other.Player = 3
	need(SpyCluePrompt, strings.Contains(civ, sampleClueMarker), "does not show the earlier clues (range over .Clues, print .Text)")
	need(SpyCluePrompt, strings.Contains(civ, sampleNoteMarker), "does not show the player's own earlier reasoning (range over .OwnNotes, print .Reasoning)")
	need(SpyCluePrompt, render(SpyCluePrompt, spy) != civ, "is the same for the spy and a civilian (use .IsSpy)")
	need(SpyCluePrompt, render(SpyCluePrompt, other) != civ, "does not tell the player its number (.Player)")
	need(SpyCluePrompt, strings.Contains(civ, `\boxed{`), `does not ask for the clue inside \boxed{...}`)
	render(SpyCluePrompt, blank)

	obs := base
	obs.Player, obs.Round, obs.Role, obs.OwnNotes = 0, 0, RoleObserver, nil
	o := render(SpyObserverPrompt, obs)
	need(SpyObserverPrompt, strings.Contains(o, sampleClueMarker), "does not show the clues (range over .Clues, print .Text)")
	need(SpyObserverPrompt, strings.Contains(o, `\boxed{`), `does not ask for the vote inside \boxed{...}`)

	voter := base
	voter.Round, voter.Role = 0, RoleVoter
	v := render(SpyVoterPrompt, voter)
	voter3 := voter
	voter3.Player = 3
	need(SpyVoterPrompt, strings.Contains(v, sampleClueMarker), "does not show the clues (range over .Clues, print .Text)")
	need(SpyVoterPrompt, render(SpyVoterPrompt, voter3) != v, "does not tell the voter its number (.Player)")
	need(SpyVoterPrompt, strings.Contains(v, `\boxed{`), `does not ask for the vote inside \boxed{...}`)
	if len(errs) > 0 {
		sort.Strings(errs)
		return errors.New(strings.Join(spyDedupe(errs), "; "))
	}
	return nil
}

func spyDedupe(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// SpyPromptFiles lists the embedded default templates, for users who want to start from them.
func SpyPromptFiles() (fs.FS, []string) {
	sub, _ := fs.Sub(spyPromptFS, "prompts")
	return sub, append([]string(nil), spyPromptNames...)
}
