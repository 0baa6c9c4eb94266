package selfplay

// The rules of V-Zero's Questioner/Solver game (games.md section 2) as pure functions: parsing
// the Questioner's output, extracting the Solver's answer, majority votes, the dual-track
// Questioner reward, pseudo-labels with the confidence filter, and the Solver's reward. Where
// games.md is silent the official code (github.com/SatonoDia/V-Zero, mathruler's
// extract_boxed_content) decides; each such choice is noted where it is made.

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

const (
	// QSInvalidReward is the Questioner's reward for output that is not a valid question.
	QSInvalidReward = -1.0
	// QSNoAnswer is the answer of a completion without a closed \boxed{...}.
	QSNoAnswer = "None"
	// QSMinConfidence and QSMaxConfidence bound the pseudo-label confidence of the questions
	// the Solver trains on (games.md: keep 0.3 <= c <= 0.8).
	QSMinConfidence = 0.3
	QSMaxConfidence = 0.8
)

// qsOptionLetters are the four options every question must offer, in order.
var qsOptionLetters = [4]byte{'A', 'B', 'C', 'D'}

// QSQuestion is a valid Questioner output.
type QSQuestion struct {
	// Question is the trimmed content of <question>...</question>, stem and options: the text
	// the Solver is asked.
	Question string
	Stem     string    // the text before option A)
	Options  [4]string // the texts of options A) to D)
	Answer   string    // the Questioner's quick answer, "A".."D"
}

// QSParseQuestion parses the Questioner's output. It needs `<question>...</question>` whose
// content has a non-empty stem followed by four non-empty options marked A) B) C) D) (or
// (A) ... (D)), and `<answer>X</answer>` where X is one of the four letters. The error says
// what is missing; its reward is QSInvalidReward.
//
// Departures from the official code, which only checks that the substrings "A)".."D)" occur and
// takes the first capital letter of the answer: a marker must not follow a letter or digit (so
// "(DNA)" is no option A), the options must come in order, and the answer must be a bare
// option letter ("B", "b", "(B)", "B)"), because a question whose own answer is not one of its
// options cannot be scored.
func QSParseQuestion(output string) (QSQuestion, error) {
	content, ok := qsTagContent(output, "question")
	if !ok {
		return QSQuestion{}, errors.New("qs question: no <question>...</question>")
	}
	q := QSQuestion{Question: strings.TrimSpace(promptSafe(content))} // the Solver's prompt shows it
	if q.Question == "" {
		return QSQuestion{}, errors.New("qs question: empty <question>")
	}
	stem, options, err := qsSplitOptions(q.Question)
	if err != nil {
		return QSQuestion{}, fmt.Errorf("qs question: %w", err)
	}
	q.Stem, q.Options = stem, options

	answer, ok := qsTagContent(output, "answer")
	if !ok {
		return QSQuestion{}, errors.New("qs question: no <answer>...</answer>")
	}
	letter, ok := qsOptionLetter(answer)
	if !ok {
		return QSQuestion{}, fmt.Errorf("qs question: answer %q is not one of A, B, C, D", qsShorten(answer))
	}
	q.Answer = letter
	return q, nil
}

// qsTagContent returns the text between the first <tag> and the first </tag> after it
// (case-sensitive, as the official regex).
func qsTagContent(s, tag string) (string, bool) {
	open, closing := "<"+tag+">", "</"+tag+">"
	i := strings.Index(s, open)
	if i < 0 {
		return "", false
	}
	rest := s[i+len(open):]
	j := strings.Index(rest, closing)
	if j < 0 {
		return "", false
	}
	return rest[:j], true
}

// qsSplitOptions finds the markers from the end (options close a question; a stem may mention
// "A)" itself): the last D), then the last C) before it, and so on.
func qsSplitOptions(q string) (stem string, options [4]string, err error) {
	end := len(q)
	var starts [4]int // where each option's text starts
	for k := 3; k >= 0; k-- {
		at := qsLastMarker(q[:end], qsOptionLetters[k])
		if at < 0 {
			return "", options, fmt.Errorf("option %c) missing or out of order", qsOptionLetters[k])
		}
		starts[k] = at + 2
		text := strings.TrimSpace(q[starts[k]:end])
		if text == "" {
			return "", options, fmt.Errorf("option %c) is empty", qsOptionLetters[k])
		}
		options[k] = text
		end = at
		if at > 0 && q[at-1] == '(' { // "(A)" style: the parenthesis belongs to the marker
			end = at - 1
		}
	}
	stem = strings.TrimSpace(q[:end])
	if stem == "" {
		return "", options, errors.New("no question text before option A)")
	}
	return stem, options, nil
}

// qsLastMarker returns the index of the last "X)" in s whose X does not follow a letter or
// digit, or -1.
func qsLastMarker(s string, letter byte) int {
	marker := string([]byte{letter, ')'})
	for end := len(s); ; {
		i := strings.LastIndex(s[:end], marker)
		if i < 0 {
			return -1
		}
		if i == 0 || !qsIsAlnum(s[i-1]) {
			return i
		}
		end = i
	}
}

func qsIsAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// QSExtractAnswer returns the Solver's answer: the trimmed content of the LAST `\boxed{`,
// up to its matching brace (nested braces balanced), or QSNoAnswer when there is no box or the
// last box never closes (mathruler's extract_boxed_content: an earlier closed box does not
// stand in for an unclosed last one).
func QSExtractAnswer(completion string) string {
	const box = `\boxed{`
	i := strings.LastIndex(completion, box)
	if i < 0 {
		return QSNoAnswer
	}
	content := completion[i+len(box):]
	depth := 0
	for j := 0; j < len(content); j++ {
		switch content[j] {
		case '{':
			depth++
		case '}':
			if depth == 0 {
				return strings.TrimSpace(content[:j])
			}
			depth--
		}
	}
	return QSNoAnswer
}

// QSExtractAnswers applies QSExtractAnswer to each completion.
func QSExtractAnswers(completions []string) []string {
	out := make([]string, len(completions))
	for i, c := range completions {
		out[i] = QSExtractAnswer(c)
	}
	return out
}

// QSSameAnswer compares two answers: option letters case-insensitively and in their usual
// dressings ("B", "b", "(B)", "B)", "B.", "[B]", `\text{B}` are all B); anything else as the
// trimmed raw string. "B) red" is not B (as mathruler's grade_answer: the box should hold the
// letter).
func QSSameAnswer(a, b string) bool { return qsCanonical(a) == qsCanonical(b) }

func qsCanonical(s string) string {
	if l, ok := qsLetter(s); ok {
		return l
	}
	return strings.TrimSpace(s)
}

// qsLetter recognises a bare letter in its dressings and returns it upper-cased.
func qsLetter(s string) (string, bool) {
	t := strings.TrimSpace(s)
	for _, wrap := range []string{`\text{`, `\mathrm{`, `\textbf{`} {
		if strings.HasPrefix(t, wrap) && strings.HasSuffix(t, "}") {
			t = strings.TrimSpace(t[len(wrap) : len(t)-1])
		}
	}
	t = strings.TrimSpace(strings.TrimSuffix(t, "."))
	switch {
	case len(t) >= 2 && t[0] == '(' && t[len(t)-1] == ')', len(t) >= 2 && t[0] == '[' && t[len(t)-1] == ']':
		t = strings.TrimSpace(t[1 : len(t)-1])
	case strings.HasSuffix(t, ")"):
		t = strings.TrimSpace(t[:len(t)-1])
	}
	if len(t) != 1 {
		return "", false
	}
	c := t[0]
	if c >= 'a' && c <= 'z' {
		c -= 'a' - 'A'
	}
	if c < 'A' || c > 'Z' {
		return "", false
	}
	return string(c), true
}

// qsOptionLetter is qsLetter restricted to the four options.
func qsOptionLetter(s string) (string, bool) {
	l, ok := qsLetter(s)
	if !ok || l[0] > 'D' {
		return "", false
	}
	return l, true
}

// QSVote is a majority vote over m answers.
type QSVote struct {
	Answer     string  // the winning answer ("" when no answer got a vote)
	Count      int     // votes for Answer
	Total      int     // m, every sample: the denominator of Confidence
	Confidence float64 // Count / Total
}

// QSMajority votes on raw answer strings: exact string equality, ties to the answer seen first.
// QSNoAnswer votes like any answer (games.md: a missing box counts as "None"). An empty box
// (answer "") casts no vote but stays in the denominator, as in the official server.
func QSMajority(answers []string) (QSVote, error) {
	if len(answers) == 0 {
		return QSVote{}, errors.New("qs majority: no answers")
	}
	counts := map[string]int{}
	var order []string
	for _, a := range answers {
		if a == "" {
			continue
		}
		if counts[a] == 0 {
			order = append(order, a)
		}
		counts[a]++
	}
	v := QSVote{Total: len(answers)}
	for _, a := range order { // first seen wins ties: only a strictly larger count replaces it
		if counts[a] > v.Count {
			v.Answer, v.Count = a, counts[a]
		}
	}
	v.Confidence = float64(v.Count) / float64(v.Total)
	return v, nil
}

// QSQuestionerReward is the dual-track reward of a valid question with quick answer `quick`
// (a letter A-D), given the frozen Solver's m extracted answers. With a* the majority answer and
// c its confidence: r = min(c, 1-c) if a* agrees with the quick answer (QSSameAnswer), 0.5*c if
// it disagrees and is not "None", else 0. The vote is returned for the transcripts.
func QSQuestionerReward(quick string, answers []string) (float64, QSVote, error) {
	if _, ok := qsOptionLetter(quick); !ok {
		return 0, QSVote{}, fmt.Errorf("qs questioner reward: quick answer %q is not one of A, B, C, D", qsShorten(quick))
	}
	v, err := QSMajority(answers)
	if err != nil {
		return 0, QSVote{}, fmt.Errorf("qs questioner reward: %w", err)
	}
	c := v.Confidence
	switch {
	case v.Answer != "" && QSSameAnswer(v.Answer, quick):
		return math.Min(c, 1-c), v, nil
	case v.Answer != "" && v.Answer != QSNoAnswer:
		return 0.5 * c, v, nil
	default:
		return 0, v, nil
	}
}

// QSLabel is the pseudo-label of a question for the Solver stage.
type QSLabel struct {
	Label      string // majority letter "A".."D"; "" when no sample answered with one
	Count      int    // samples that gave Label
	Total      int    // all samples, invalid ones included
	Confidence float64
	Keep       bool // minConf <= Confidence <= maxConf and a label exists
}

// QSPseudoLabel takes the previous Solver's m extracted answers to one question. Only option
// letters A-D vote (in any dressing QSSameAnswer accepts); everything else (no box, "E", free
// text) is invalid but stays in the denominator. Ties go to the letter seen first. Keep applies
// the filter minConf <= c <= maxConf (games.md: 0.3 and 0.8).
func QSPseudoLabel(answers []string, minConf, maxConf float64) (QSLabel, error) {
	if len(answers) == 0 {
		return QSLabel{}, errors.New("qs pseudo-label: no answers")
	}
	if !(minConf >= 0 && minConf <= maxConf && maxConf <= 1) {
		return QSLabel{}, fmt.Errorf("qs pseudo-label: confidence range [%v, %v], want 0 <= min <= max <= 1", minConf, maxConf)
	}
	letters := make([]string, len(answers))
	for i, a := range answers {
		letters[i], _ = qsOptionLetter(a) // "" for invalid: QSMajority counts it in Total only
	}
	v, err := QSMajority(letters)
	if err != nil {
		return QSLabel{}, fmt.Errorf("qs pseudo-label: %w", err)
	}
	l := QSLabel{Label: v.Answer, Count: v.Count, Total: v.Total, Confidence: v.Confidence}
	l.Keep = l.Label != "" && l.Confidence >= minConf && l.Confidence <= maxConf
	return l, nil
}

// QSSolverReward is 1 if the completion's boxed answer equals the pseudo-label (a letter A-D),
// else 0.
func QSSolverReward(completion, label string) (float64, error) {
	if _, ok := qsOptionLetter(label); !ok {
		return 0, fmt.Errorf("qs solver reward: label %q is not one of A, B, C, D", qsShorten(label))
	}
	if QSSameAnswer(QSExtractAnswer(completion), label) {
		return 1, nil
	}
	return 0, nil
}

// qsShorten keeps error messages readable when a model writes a novel into a tag.
func qsShorten(s string) string {
	const limit = 40
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	return string([]rune(s)[:limit]) + "..."
}
