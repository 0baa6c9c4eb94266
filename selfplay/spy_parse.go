package selfplay

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// NoClue is what later players see when a clue has no answer (games.md 1.1).
const NoClue = "No valid clue provided."

// Kinds of a parsed vote.
const (
	VotePlayer  = "player"  // a digit 1-9 (it may exceed N: then it is a wrong vote)
	VoteAbstain = "abstain" // N/A or NA
	VoteInvalid = "invalid" // anything else, an empty or missing answer included
)

// SpyVote is one parsed decision.
type SpyVote struct {
	Kind   string `json:"kind"`
	Player int    `json:"player,omitempty"` // when Kind is VotePlayer
}

// spyAnswer finds the answer of a completion: the content of the first `\boxed{` up to the first
// `}` after it, else the content of the first `<answer>...</answer>`. start is the byte offset where
// the answer markup begins (the reasoning is what comes before it); ok is false when there is none.
func spyAnswer(text string) (answer string, start int, ok bool) {
	const box = `\boxed{`
	if i := strings.Index(text, box); i >= 0 {
		rest := text[i+len(box):]
		if j := strings.IndexByte(rest, '}'); j >= 0 {
			return rest[:j], i, true
		}
	}
	const open, close = "<answer>", "</answer>"
	if i := strings.Index(text, open); i >= 0 {
		rest := text[i+len(open):]
		if j := strings.Index(rest, close); j >= 0 {
			return rest[:j], i, true
		}
	}
	return "", len(text), false
}

// SpyReasoning is the private reasoning of a completion: the text before its answer, trimmed.
// Without an answer the whole text is reasoning.
func SpyReasoning(text string) string {
	_, start, _ := spyAnswer(text)
	return strings.TrimSpace(promptSafe(text[:start]))
}

// promptSafe drops the NUL bytes of model output that goes into another prompt (a clue, a
// player's own notes, a question): prompts reach llama.cpp as C strings, so llm refuses text with
// NUL, and a model's garbage must not stop a game.
func promptSafe(s string) string { return strings.ReplaceAll(s, "\x00", "") }

// ParseClue returns the clue later players see and whether the completion had one. An empty
// answer counts as none: later players would otherwise see nothing at all.
func ParseClue(text string) (clue string, ok bool) {
	ans, _, found := spyAnswer(text)
	ans = strings.TrimSpace(promptSafe(ans))
	if !found || ans == "" {
		return NoClue, false
	}
	return ans, true
}

// ParseVote reads a decision: N/A or NA (any case) abstains, else the first standalone digit 1-9
// names a player, else the vote is invalid.
func ParseVote(text string) SpyVote {
	ans, _, found := spyAnswer(text)
	if !found {
		return SpyVote{Kind: VoteInvalid}
	}
	ans = strings.TrimSpace(ans)
	if strings.EqualFold(ans, "N/A") || strings.EqualFold(ans, "NA") {
		return SpyVote{Kind: VoteAbstain}
	}
	if d, ok := firstStandaloneDigit(ans); ok {
		return SpyVote{Kind: VotePlayer, Player: d}
	}
	return SpyVote{Kind: VoteInvalid}
}

// firstStandaloneDigit finds the first digit 1-9 that is not part of a word (as a regular
// expression \b[1-9]\b would): "Player 3" gives 3, "12", "3rd" and "P3" give nothing.
func firstStandaloneDigit(s string) (int, bool) {
	var prev rune = -1
	for i, r := range s {
		if r >= '1' && r <= '9' && !isWordRune(prev) {
			next, _ := utf8.DecodeRuneInString(s[i+1:])
			if i+1 >= len(s) || !isWordRune(next) {
				return int(r - '0'), true
			}
		}
		prev = r
	}
	return 0, false
}

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// spyFormatOK is fmt_k of games.md 1.2: reasoning longer than 10 characters and a parsable answer.
func spyFormatOK(text string, v SpyVote) bool {
	return v.Kind != VoteInvalid && utf8.RuneCountInString(SpyReasoning(text)) > 10
}
