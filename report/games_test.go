package report

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vzlocal/vzlocal/selfplay"
)

func TestViewGameShapes(t *testing.T) {
	tests := []struct {
		name       string
		record     string
		wantClues  []Utterance
		wantVotes  []Utterance
		wantImages []ImageRef
		bareVotes  bool
	}{
		{
			name: "flat clue objects, plain votes, nested image paths",
			record: `{"spy":3,"pair":{"original":"a/1.png","modified":"a/1_mod.PNG","id":"x"},
				"clues":[{"round":1,"player":3,"clue":"A cube.","reasoning":"think"}],"votes":[3,"N/A",null]}`,
			wantClues:  []Utterance{{Round: 1, Player: "3", Role: "spy", Text: "A cube.", Reasoning: "think"}},
			wantVotes:  []Utterance{{Text: "3"}, {Text: "N/A"}, {Text: "null"}},
			wantImages: []ImageRef{{Label: "pair.modified", Path: "a/1_mod.PNG"}, {Label: "pair.original", Path: "a/1.png"}},
			bareVotes:  true,
		},
		{
			name:      "clues as one list per round, votes keyed by voter",
			record:    `{"clues":[["c1","c2"],["c3"]],"votes":{"1":"2","2":{"vote":"3","completion":"because"}}}`,
			wantClues: []Utterance{{Round: 1, Text: "c1"}, {Round: 1, Text: "c2"}, {Round: 2, Text: "c3"}},
			wantVotes: []Utterance{{Player: "1", Text: "2"}, {Player: "2", Text: "3", Reasoning: "because"}},
		},
		{
			name:      "alternative keys",
			record:    `{"utterances":[{"speaker":"P1","text":"hello","role":"civilian"}],"decisions":[{"voter":"observer","answer":"\\boxed{2}","raw":"\\boxed{2}"}],"images":["x.jpg","y.txt"]}`,
			wantClues: []Utterance{{Player: "P1", Role: "civilian", Text: "hello"}},
			// raw equal to the answer is not repeated as reasoning
			wantVotes:  []Utterance{{Player: "observer", Text: `\boxed{2}`}},
			wantImages: []ImageRef{{Label: "images[0]", Path: "x.jpg"}},
		},
		{
			name:   "nothing recognisable",
			record: `{"foo":{"bar":[1,2]},"n":3}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var obj map[string]any
			require.NoError(t, json.Unmarshal([]byte(tc.record), &obj))
			g := viewGame(7, obj)
			assert.Equal(t, 7, g.Line)
			assert.Equal(t, tc.wantClues, g.Clues)
			assert.Equal(t, tc.wantVotes, g.Votes)
			assert.Equal(t, tc.wantImages, g.Images)
			assert.Equal(t, tc.bareVotes, g.BareVotes)
		})
	}
}

func TestViewGameScalarFieldsAndImageLimit(t *testing.T) {
	var obj map[string]any
	require.NoError(t, json.Unmarshal([]byte(`{"step":12,"winner":"spy","ok":true,"b":0.026666666666666666,"big":3000000,"imgs":["1.png","2.png","1.png","3.png","4.png","5.png"]}`), &obj))
	g := viewGame(1, obj)
	assert.Equal(t, []Field{{"b", "0.026667"}, {"big", "3000000"}, {"ok", "true"}, {"step", "12"}, {"winner", "spy"}}, g.Fields)
	require.Len(t, g.Images, maxImagesPerGame)
	assert.Equal(t, "4.png", g.Images[3].Path, "duplicates are skipped")
}

func TestSpread(t *testing.T) {
	tests := []struct {
		n, want int
		picks   []int
	}{
		{10, 3, []int{0, 4, 9}},
		{3, 5, []int{0, 1, 2}},
		{7, 1, []int{6}},
		{100, 4, []int{0, 33, 66, 99}},
	}
	for _, tc := range tests {
		got := spread(tc.n, tc.want)
		assert.Len(t, got, len(tc.picks))
		for _, p := range tc.picks {
			assert.Contains(t, got, p, "n=%d want=%d", tc.n, tc.want)
		}
	}
}

func TestTimeline(t *testing.T) {
	steps := []selfplay.StepMetrics{
		{Step: 1, Phase: "decision"}, {Step: 2, Phase: "decision"},
		{Step: 3, Phase: "clue", PhaseSwitched: true}, {Step: 4, Phase: "clue"}, {Step: 5, Phase: "clue"},
		// A switch to the same phase name (e.g. a new V-Zero iteration) still starts a span.
		{Step: 6, Phase: "clue", PhaseSwitched: true},
		// A phase change the switcher did not flag (resumed run, older logs) also does.
		{Step: 8, Phase: "decision"},
	}
	assert.Equal(t, []PhaseSpan{
		{Phase: "decision", From: 1, To: 2, Steps: 2},
		{Phase: "clue", From: 3, To: 5, Steps: 3},
		{Phase: "clue", From: 6, To: 6, Steps: 1},
		{Phase: "decision", From: 8, To: 8, Steps: 1},
	}, Timeline(steps))
	assert.Empty(t, Timeline(nil))
}

func TestUniqueNames(t *testing.T) {
	runs := []*Run{{Name: "run", Dir: "/x/a/run"}, {Name: "run", Dir: "/x/b/run"}, {Name: "other", Dir: "/x/other"}, {Name: "run", Dir: "/x/a/run"}}
	uniqueNames(runs)
	assert.Equal(t, "a/run", runs[0].Name)
	assert.Equal(t, "b/run", runs[1].Name)
	assert.Equal(t, "other", runs[2].Name)
	assert.Equal(t, "a/run (2)", runs[3].Name)
}
