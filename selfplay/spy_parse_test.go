package selfplay

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseClue(t *testing.T) {
	tests := []struct {
		name, text, clue string
		ok               bool
	}{
		{"boxed", `I see a cube. \boxed{A red cube on the left.}`, "A red cube on the left.", true},
		{"first box wins", `\boxed{one} then \boxed{two}`, "one", true},
		{"up to first brace", `\boxed{a {nested} b}`, "a {nested", true},
		{"trimmed", "\\boxed{  spaced  }", "spaced", true},
		{"answer tag fallback", `thinking <answer>a blue sphere</answer>`, "a blue sphere", true},
		{"box beats answer tag", `<answer>tag</answer> \boxed{box}`, "box", true},
		{"unclosed box falls back to answer", `\boxed{oops <answer>tag</answer>`, "tag", true},
		{"unclosed box alone", `\boxed{never closed`, NoClue, false},
		{"unclosed answer", `<answer>never closed`, NoClue, false},
		{"empty box", `\boxed{}`, NoClue, false},
		{"empty", "", NoClue, false},
		{"garbage", "%%%\x00\xff", NoClue, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clue, ok := ParseClue(tt.text)
			if clue != tt.clue || ok != tt.ok {
				t.Errorf("ParseClue(%q) = %q, %v; want %q, %v", tt.text, clue, ok, tt.clue, tt.ok)
			}
		})
	}
}

func TestParseVote(t *testing.T) {
	tests := []struct {
		text string
		want SpyVote
	}{
		{`\boxed{3}`, SpyVote{Kind: VotePlayer, Player: 3}},
		{`reasoning \boxed{Player 2}`, SpyVote{Kind: VotePlayer, Player: 2}},
		{`\boxed{ n/a }`, SpyVote{Kind: VoteAbstain}},
		{`\boxed{NA}`, SpyVote{Kind: VoteAbstain}},
		{`\boxed{na}`, SpyVote{Kind: VoteAbstain}},
		{`\boxed{7}`, SpyVote{Kind: VotePlayer, Player: 7}}, // > N: a wrong vote, decided by the scorer
		{`\boxed{12}`, SpyVote{Kind: VoteInvalid}},
		{`\boxed{12 or 4}`, SpyVote{Kind: VotePlayer, Player: 4}},
		{`\boxed{0}`, SpyVote{Kind: VoteInvalid}},
		{`\boxed{P3}`, SpyVote{Kind: VoteInvalid}},
		{`\boxed{3rd}`, SpyVote{Kind: VoteInvalid}},
		{`\boxed{#3.}`, SpyVote{Kind: VotePlayer, Player: 3}},
		{`\boxed{\text{2}}`, SpyVote{Kind: VotePlayer, Player: 2}},
		{`\boxed{}`, SpyVote{Kind: VoteInvalid}},
		{`\boxed{N/A maybe 2}`, SpyVote{Kind: VotePlayer, Player: 2}},
		{`<answer>4</answer>`, SpyVote{Kind: VotePlayer, Player: 4}},
		{`The spy is 3`, SpyVote{Kind: VoteInvalid}}, // no answer markup
		{``, SpyVote{Kind: VoteInvalid}},
		{`\boxed{３}`, SpyVote{Kind: VoteInvalid}}, // full-width digit is not 1-9
	}
	for _, tt := range tests {
		if got := ParseVote(tt.text); got != tt.want {
			t.Errorf("ParseVote(%q) = %+v, want %+v", tt.text, got, tt.want)
		}
	}
}

func TestSpyReasoningAndFormat(t *testing.T) {
	tests := []struct {
		text      string
		reasoning string
		format    bool
	}{
		{`Player 3 named a purple cylinder. \boxed{3}`, "Player 3 named a purple cylinder.", true},
		{`short \boxed{3}`, "short", false},
		{`exactly10c\boxed{3}`, "exactly10c", false},
		{`exactly11ch\boxed{3}`, "exactly11ch", true},
		{`no answer at all, only a lot of words`, "no answer at all, only a lot of words", false},
		{`long enough reasoning \boxed{N/A}`, "long enough reasoning", true},
		{`long enough reasoning \boxed{}`, "long enough reasoning", false},
	}
	for _, tt := range tests {
		if got := SpyReasoning(tt.text); got != tt.reasoning {
			t.Errorf("SpyReasoning(%q) = %q, want %q", tt.text, got, tt.reasoning)
		}
		if got := spyFormatOK(tt.text, ParseVote(tt.text)); got != tt.format {
			t.Errorf("spyFormatOK(%q) = %v, want %v", tt.text, got, tt.format)
		}
	}
}

var parserSeeds = []string{
	"", `\boxed{3}`, `\boxed{N/A}`, `\boxed{`, `\boxed{}`, `}`, `<answer>`, `<answer></answer>`,
	`<answer>2</answer>`, `\boxed{\boxed{1}}`, "\xff\xfe\\boxed{\xff5\xff}", `\boxed{9}9`, `\boxed{a1b 2}`,
	"think\n\\boxed{Player 4 is the spy}", `\boxed{<answer>1</answer>}`, strings.Repeat(`\boxed{`, 50),
}

func FuzzParseVote(f *testing.F) {
	for _, s := range parserSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		v := ParseVote(text)
		switch v.Kind {
		case VotePlayer:
			if v.Player < 1 || v.Player > 9 {
				t.Fatalf("ParseVote(%q) = player %d, outside 1-9", text, v.Player)
			}
		case VoteAbstain, VoteInvalid:
			if v.Player != 0 {
				t.Fatalf("ParseVote(%q) = %+v: a non-player vote names a player", text, v)
			}
		default:
			t.Fatalf("ParseVote(%q) = unknown kind %q", text, v.Kind)
		}
		if v.Kind != VoteInvalid && !strings.Contains(text, `\boxed{`) && !strings.Contains(text, "<answer>") {
			t.Fatalf("ParseVote(%q) = %+v without any answer markup", text, v)
		}
		r := SpyReasoning(text)
		if !strings.Contains(text, r) {
			t.Fatalf("SpyReasoning(%q) = %q is not part of the text", text, r)
		}
		_ = spyFormatOK(text, v)
	})
}

func FuzzParseClue(f *testing.F) {
	for _, s := range parserSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		clue, ok := ParseClue(text)
		if !ok {
			if clue != NoClue {
				t.Fatalf("ParseClue(%q) = %q, not the placeholder, without a clue", text, clue)
			}
			return
		}
		if clue == "" || !strings.Contains(text, clue) {
			t.Fatalf("ParseClue(%q) = %q: empty or not taken from the text", text, clue)
		}
		if strings.HasPrefix(clue, " ") || strings.HasSuffix(clue, " ") {
			t.Fatalf("ParseClue(%q) = %q is not trimmed", text, clue)
		}
		if utf8.ValidString(text) && !utf8.ValidString(clue) {
			t.Fatalf("ParseClue(%q) = %q split a character", text, clue)
		}
	})
}

// TestModelTextForPromptsHasNoNUL: a model's NUL bytes never reach another prompt (llm refuses
// prompt text with NUL): clues, own notes and questions drop them.
func TestModelTextForPromptsHasNoNUL(t *testing.T) {
	if clue, ok := ParseClue("I see\x00 a cube \\boxed{a red\x00 cube}"); !ok || clue != "a red cube" {
		t.Fatalf("clue %q %v", clue, ok)
	}
	if clue, ok := ParseClue("\\boxed{\x00}"); ok || clue != NoClue {
		t.Fatalf("a clue of NUL only: %q %v", clue, ok)
	}
	if r := SpyReasoning("my picture\x00 has a cube \\boxed{x}"); r != "my picture has a cube" {
		t.Fatalf("reasoning %q", r)
	}
	q, err := QSParseQuestion("<question>What\x00 is red? A) cube B) ball C) cone D) none</question><answer>A</answer>")
	if err != nil || strings.ContainsRune(q.Question, 0) || strings.ContainsRune(q.Stem, 0) {
		t.Fatalf("question %q, %v", q.Question, err)
	}
}
