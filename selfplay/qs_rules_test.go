package selfplay

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// qsBoxes builds Solver completions from extracted answers: "None" becomes a completion without
// a box, so the vectors go through QSExtractAnswer as in the game.
func qsBoxes(spec ...any) []string {
	var out []string
	for i := 0; i < len(spec); i += 2 {
		ans, n := spec[i].(string), spec[i+1].(int)
		for k := 0; k < n; k++ {
			if ans == QSNoAnswer {
				out = append(out, "I cannot tell from the image.")
			} else {
				out = append(out, "<think>counting</think> so the answer is \\boxed{"+ans+"}")
			}
		}
	}
	return out
}

const qsValidOutput = `The image shows three cubes and a sphere.
<question>How many cubes are in the image?
A) 1
B) 3
C) 4
D) 5</question>
<answer>B</answer>`

// games.md section 2 test vectors for the dual-track Questioner reward, and the boundaries
// around them.
func TestQSQuestionerReward(t *testing.T) {
	tests := []struct {
		name      string
		quick     string
		solver    []string
		want      float64
		majority  string
		confident float64
	}{
		{"spec: B, {B5 C3 None2} -> 0.5", "B", qsBoxes("B", 5, "C", 3, QSNoAnswer, 2), 0.5, "B", 0.5},
		{"spec: B, {B9 A1} -> 0.1", "B", qsBoxes("B", 9, "A", 1), 0.1, "B", 0.9},
		{"spec: A, {C8 B2} -> 0.4", "A", qsBoxes("C", 8, "B", 2), 0.4, "C", 0.8},
		{"spec: A, {None6 A4} -> 0", "A", qsBoxes(QSNoAnswer, 6, "A", 4), 0, QSNoAnswer, 0.6},
		{"unanimous agreement -> 0", "C", qsBoxes("C", 10), 0, "C", 1},
		{"agreement through dressing", "b", qsBoxes("(B)", 3, "A", 2), 0.4, "(B)", 0.6},
		// Raw-string votes: "b" and "B" are different votes, so A (3, seen before None's 3)
		// beats B (2) and b (2) and disagrees: 0.5 * 0.3.
		{"raw-string votes", "B", qsBoxes("B", 2, "b", 2, "A", 3, QSNoAnswer, 3), 0.15, "A", 0.3},
		// Tie B 2, A 2 (of 5): the first seen wins; agreeing gives min(0.4, 0.6), disagreeing 0.5*0.4.
		{"tie to first seen", "B", qsBoxes("B", 2, "A", 2, QSNoAnswer, 1), 0.4, "B", 0.4},
		{"tie to first seen, other order", "B", qsBoxes("A", 2, "B", 2, QSNoAnswer, 1), 0.2, "A", 0.4},
		// Empty boxes cast no vote but count in m: C has 1 of 4.
		{"empty boxes", "A", qsBoxes("", 3, "C", 1), 0.125, "C", 0.25},
		{"all empty boxes", "A", qsBoxes("", 4), 0, "", 0},
		{"free-text majority disagrees", "A", qsBoxes("3 cubes", 6, "A", 4), 0.3, "3 cubes", 0.6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, vote, err := QSQuestionerReward(tc.quick, QSExtractAnswers(tc.solver))
			if err != nil {
				t.Fatal(err)
			}
			if !qsNear(r, tc.want) {
				t.Errorf("reward %v, want %v", r, tc.want)
			}
			if vote.Answer != tc.majority || !qsNear(vote.Confidence, tc.confident) || vote.Total != len(tc.solver) {
				t.Errorf("vote %+v, want %q with confidence %v of %d", vote, tc.majority, tc.confident, len(tc.solver))
			}
		})
	}
}

func qsNear(a, b float64) bool { return a-b < 1e-12 && b-a < 1e-12 }

func TestQSQuestionerRewardErrors(t *testing.T) {
	if _, _, err := QSQuestionerReward("B", nil); err == nil || !strings.Contains(err.Error(), "no answers") {
		t.Errorf("no answers: error %v", err)
	}
	if _, _, err := QSQuestionerReward("E", []string{"E"}); err == nil || !strings.Contains(err.Error(), "not one of A, B, C, D") {
		t.Errorf("quick answer E: error %v", err)
	}
}

func TestQSParseQuestion(t *testing.T) {
	tests := []struct {
		name    string
		output  string
		stem    string
		options [4]string
		answer  string
		wantErr string // "" = valid
	}{
		{"valid", qsValidOutput, "How many cubes are in the image?", [4]string{"1", "3", "4", "5"}, "B", ""},
		{"inline options, lower-case answer", "<question>Which color is the sphere? A) red B) blue C) green D) gray</question><answer> c </answer>",
			"Which color is the sphere?", [4]string{"red", "blue", "green", "gray"}, "C", ""},
		{"parenthesised markers and answer", "<question>Largest object?\n(A) cube\n(B) sphere\n(C) cylinder\n(D) none</question>\n<answer>(D)</answer>",
			"Largest object?", [4]string{"cube", "sphere", "cylinder", "none"}, "D", ""},
		// The stem mentions "A)" itself; markers are found from the end.
		{"stem mentions a marker", "<question>Look at region A) on the left. What is there? A) cube B) sphere C) cone D) nothing</question><answer>A</answer>",
			"Look at region A) on the left. What is there?", [4]string{"cube", "sphere", "cone", "nothing"}, "A", ""},
		{"spec: missing D) -> invalid", "<question>How many cubes? A) 1 B) 2 C) 3</question><answer>A</answer>", "", [4]string{}, "", "option D) missing"},
		{"no question tag", "How many cubes? A) 1 B) 2 C) 3 D) 4 <answer>A</answer>", "", [4]string{}, "", "no <question>"},
		{"unclosed question", "<question>How many cubes? A) 1 B) 2 C) 3 D) 4 <answer>A</answer>", "", [4]string{}, "", "no <question>"},
		{"empty question", "<question>  </question><answer>A</answer>", "", [4]string{}, "", "empty <question>"},
		{"no answer tag", "<question>How many? A) 1 B) 2 C) 3 D) 4</question>", "", [4]string{}, "", "no <answer>"},
		{"answer not a letter", "<question>How many? A) 1 B) 2 C) 3 D) 4</question><answer>two</answer>", "", [4]string{}, "", `answer "two"`},
		{"answer E", "<question>How many? A) 1 B) 2 C) 3 D) 4</question><answer>E</answer>", "", [4]string{}, "", `answer "E"`},
		{"options out of order", "<question>How many? B) 1 A) 2 C) 3 D) 4</question><answer>A</answer>", "", [4]string{}, "", "option A) missing or out of order"},
		{"empty option", "<question>How many? A) 1 B) C) 3 D) 4</question><answer>A</answer>", "", [4]string{}, "", "option B) is empty"},
		{"no stem", "<question>A) 1 B) 2 C) 3 D) 4</question><answer>A</answer>", "", [4]string{}, "", "no question text"},
		// "(DNA)" contains "A)" after a letter: not an option marker.
		{"marker inside a word", "<question>Which molecule (DNA) B) x C) y D) z</question><answer>B</answer>", "", [4]string{}, "", "option A) missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := QSParseQuestion(tc.output)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if q.Stem != tc.stem || q.Options != tc.options || q.Answer != tc.answer {
				t.Errorf("parsed %+v, want stem %q options %q answer %q", q, tc.stem, tc.options, tc.answer)
			}
			if !strings.HasPrefix(q.Question, tc.stem) {
				t.Errorf("question %q does not start with the stem", q.Question)
			}
		})
	}
}

func TestQSExtractAnswer(t *testing.T) {
	tests := []struct {
		name, completion, want string
	}{
		{"simple", `so \boxed{B}`, "B"},
		{"last box wins", `first \boxed{A} then \boxed{C}`, "C"},
		{"nested braces", `\boxed{\frac{1}{2}}`, `\frac{1}{2}`},
		{"trimmed", `\boxed{  (B) }`, "(B)"},
		{"missing", "the answer is B", QSNoAnswer},
		{"unclosed last box", `\boxed{A} and \boxed{B`, QSNoAnswer},
		{"unbalanced nested", `\boxed{\frac{1}{2}`, QSNoAnswer},
		{"empty box", `\boxed{}`, ""},
		{"brace after box", `\boxed{B}}}`, "B"},
		{"empty input", "", QSNoAnswer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := QSExtractAnswer(tc.completion); got != tc.want {
				t.Errorf("QSExtractAnswer(%q) = %q, want %q", tc.completion, got, tc.want)
			}
		})
	}
}

func TestQSSameAnswer(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"B", "B", true},
		{"b", "B", true},
		{"(B)", "B", true},
		{"B)", "b", true},
		{"B.", "B", true},
		{"[B]", "B", true},
		{`\text{B}`, "B", true},
		{" (b). ", "B", true},
		{"B", "C", false},
		{"B) red", "B", false},
		{"(B", "B", false},
		{"None", "None", true},
		{"3 cubes", "3 cubes", true},
		{"3 cubes", "3 Cubes", false},
		{"", "", true},
	}
	for _, tc := range tests {
		if got := QSSameAnswer(tc.a, tc.b); got != tc.want {
			t.Errorf("QSSameAnswer(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := QSSameAnswer(tc.b, tc.a); got != tc.want {
			t.Errorf("QSSameAnswer(%q, %q) = %v, want %v (symmetry)", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestQSMajority(t *testing.T) {
	tests := []struct {
		name    string
		answers []string
		want    QSVote
	}{
		{"plain", []string{"A", "B", "A"}, QSVote{Answer: "A", Count: 2, Total: 3, Confidence: 2.0 / 3}},
		{"tie to first seen", []string{"C", "A", "A", "C"}, QSVote{Answer: "C", Count: 2, Total: 4, Confidence: 0.5}},
		{"None votes", []string{"None", "None", "A"}, QSVote{Answer: "None", Count: 2, Total: 3, Confidence: 2.0 / 3}},
		{"empty strings cast no vote", []string{"", "", "B"}, QSVote{Answer: "B", Count: 1, Total: 3, Confidence: 1.0 / 3}},
		{"no votes", []string{"", ""}, QSVote{Answer: "", Count: 0, Total: 2, Confidence: 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := QSMajority(tc.answers)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, err := QSMajority(nil); err == nil {
		t.Error("no answers: want an error")
	}
}

// games.md section 2 pseudo-label vectors ("invalid" = a completion without a usable letter),
// plus the filter's inclusive bounds.
func TestQSPseudoLabel(t *testing.T) {
	tests := []struct {
		name       string
		solver     []string
		label      string
		confidence float64
		keep       bool
	}{
		{"spec: {A6 B2 invalid2} -> A 0.6 kept", qsBoxes("A", 6, "B", 2, QSNoAnswer, 2), "A", 0.6, true},
		{"spec: {A9 B1} -> 0.9 dropped", qsBoxes("A", 9, "B", 1), "A", 0.9, false},
		{"spec: {A2 B2 C1 invalid5} -> 0.2 dropped", qsBoxes("A", 2, "B", 2, "C", 1, QSNoAnswer, 5), "A", 0.2, false},
		{"lower bound 0.3 kept", qsBoxes("D", 3, QSNoAnswer, 7), "D", 0.3, true},
		{"upper bound 0.8 kept", qsBoxes("C", 8, "A", 2), "C", 0.8, true},
		// Letters in any dressing vote together; "E" and free text are invalid.
		{"dressings vote together", qsBoxes("b", 2, "(B)", 2, "B", 1, "E", 3, "two", 2), "B", 0.5, true},
		{"tie to first seen", qsBoxes("C", 4, "A", 4, QSNoAnswer, 2), "C", 0.4, true},
		{"all invalid", qsBoxes(QSNoAnswer, 10), "", 0, false},
		{"unanimous dropped", qsBoxes("A", 10), "A", 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := QSPseudoLabel(QSExtractAnswers(tc.solver), QSMinConfidence, QSMaxConfidence)
			if err != nil {
				t.Fatal(err)
			}
			if l.Label != tc.label || !qsNear(l.Confidence, tc.confidence) || l.Keep != tc.keep || l.Total != len(tc.solver) {
				t.Errorf("got %+v, want label %q confidence %v keep %v", l, tc.label, tc.confidence, tc.keep)
			}
		})
	}
}

func TestQSPseudoLabelErrors(t *testing.T) {
	tests := []struct {
		name     string
		answers  []string
		min, max float64
		want     string
	}{
		{"no answers", nil, 0.3, 0.8, "no answers"},
		{"min above max", []string{"A"}, 0.8, 0.3, "confidence range"},
		{"max above 1", []string{"A"}, 0.3, 1.5, "confidence range"},
		{"NaN", []string{"A"}, 0.3, qsNaN(), "confidence range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := QSPseudoLabel(tc.answers, tc.min, tc.max)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func qsNaN() float64 { var zero float64; return zero / zero }

func TestQSSolverReward(t *testing.T) {
	tests := []struct {
		name, completion, label string
		want                    float64
	}{
		{"correct", `\boxed{A}`, "A", 1},
		{"correct, dressed", `reasoning \boxed{(a)}`, "A", 1},
		{"wrong", `\boxed{B}`, "A", 0},
		{"no box", "A", "A", 0},
		{"last box counts", `\boxed{A} no wait \boxed{C}`, "C", 1},
		{"free text", `\boxed{A) cube}`, "A", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := QSSolverReward(tc.completion, tc.label)
			if err != nil {
				t.Fatal(err)
			}
			if r != tc.want {
				t.Errorf("reward %v, want %v", r, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "None", "E", "AB"} {
		if _, err := QSSolverReward(`\boxed{A}`, bad); err == nil {
			t.Errorf("label %q: want an error", bad)
		}
	}
}

// The whole Questioner path on the spec's first vector: parse, then score.
func TestQSQuestionerPipeline(t *testing.T) {
	q, err := QSParseQuestion(qsValidOutput)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := QSQuestionerReward(q.Answer, QSExtractAnswers(qsBoxes("B", 5, "C", 3, QSNoAnswer, 2)))
	if err != nil || r != 0.5 {
		t.Errorf("reward %v, %v; want 0.5", r, err)
	}
}

func FuzzQSParseQuestion(f *testing.F) {
	for _, s := range []string{
		qsValidOutput,
		"<question>A) B) C) D)</question><answer>A</answer>",
		"<question>Q? (A) x (B) y (C) z (D) w</question><answer>(d)</answer>",
		"<question></question><answer></answer>",
		"<question>Q A)1 B)2 C)3 D)4",
		"<answer>B</answer><question>é? A) ü B) ß C) ø D) æ</question>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := QSParseQuestion(s)
		if err != nil {
			if !utf8.ValidString(err.Error()) && utf8.ValidString(s) {
				t.Fatalf("error message is not valid UTF-8: %q", err.Error())
			}
			return
		}
		if len(q.Answer) != 1 || q.Answer[0] < 'A' || q.Answer[0] > 'D' {
			t.Fatalf("accepted answer %q", q.Answer)
		}
		if q.Stem == "" || !strings.Contains(s, q.Question) {
			t.Fatalf("stem %q question %q", q.Stem, q.Question)
		}
		for k, o := range q.Options {
			if o == "" || !strings.Contains(q.Question, o) {
				t.Fatalf("option %d = %q", k, o)
			}
		}
	})
}

func FuzzQSExtractAnswer(f *testing.F) {
	for _, s := range []string{`\boxed{B}`, `\boxed{\frac{1}{2}}`, `\boxed{`, `\boxed{}}{`, `a \boxed{x} b \boxed{{y}`, ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a := QSExtractAnswer(s)
		if a != QSNoAnswer && !strings.Contains(s, a) {
			t.Fatalf("answer %q is not part of the input", a)
		}
		if a != QSNoAnswer && strings.Count(a, "{") != strings.Count(a, "}") {
			t.Fatalf("answer %q has unbalanced braces", a)
		}
		if !QSSameAnswer(a, a) {
			t.Fatalf("QSSameAnswer is not reflexive on %q", a)
		}
		if _, err := QSSolverReward(s, "A"); err != nil {
			t.Fatal(err)
		}
		l, err := QSPseudoLabel([]string{a, s}, QSMinConfidence, QSMaxConfidence)
		if err != nil || l.Total != 2 {
			t.Fatalf("pseudo-label %+v, %v", l, err)
		}
	})
}
