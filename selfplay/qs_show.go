package selfplay

import (
	"fmt"
	"io"
	"strings"
)

// QSPrinter shows the Questioner/Solver game on a terminal as it is played: each question, the
// Solver answers that voted on it, its label and rewards. Colour only when Color is set.
type QSPrinter struct {
	W     io.Writer
	Color bool
}

func (p *QSPrinter) c(code, s string) string {
	if !p.Color {
		return s
	}
	return code + s + spyAnsiReset
}

// Record prints one scored question; it has the signature of QSEngine.OnRecord.
func (p *QSPrinter) Record(r *QSRecord) {
	head := fmt.Sprintf("%s %s q%d", p.c(spyAnsiBold, r.ImageID), r.Stage, r.Index+1)
	if !r.Valid {
		fmt.Fprintf(p.W, "%s %s %s\n", head, p.c(spyAnsiRed, "invalid:"), p.c(spyAnsiDim, r.Error+": "+qsOneLine(r.Output, 100)))
		if r.Reward != nil {
			fmt.Fprintf(p.W, "    reward %+.2f (A %+.2f)\n", *r.Reward, *r.Advantage)
		}
		return
	}
	fmt.Fprintf(p.W, "%s %s  key %s\n", head, qsOneLine(r.Question, 160), p.c(spyAnsiCyan, r.Quick))
	who := "solver"
	if r.Stage == StageSolver {
		who = "previous solver"
	}
	fmt.Fprintf(p.W, "    %s: %s\n", who, p.answers(r.Votes, r.Quick))
	switch {
	case r.Vote != nil:
		fmt.Fprintf(p.W, "    majority %s (%.1f)  reward %+.2f (A %+.2f)\n", qsShow(r.Vote.Answer), r.Vote.Confidence, *r.Reward, *r.Advantage)
	case r.Label != nil:
		verdict := p.c(spyAnsiGreen, "kept")
		if !r.Label.Keep {
			verdict = p.c(spyAnsiYellow, "dropped")
		}
		fmt.Fprintf(p.W, "    label %s (%.1f) %s\n", qsShow(r.Label.Label), r.Label.Confidence, verdict)
		if len(r.Solver) > 0 {
			rewards := make([]string, len(r.Solver))
			for i, a := range r.Solver {
				rewards[i] = fmt.Sprintf("%.0f", a.Reward)
			}
			fmt.Fprintf(p.W, "    solver: %s  rewards %s\n", p.answers(r.Solver, r.Label.Label), strings.Join(rewards, " "))
		}
	}
}

// Summary prints a step's numbers.
func (p *QSPrinter) Summary(s QSSummary) {
	if s.Stage == StageQuestioner {
		fmt.Fprintf(p.W, "%s step %d: %d/%d valid, mean confidence %.2f, questioner reward %.3f ± %.3f, solver agrees with the key %.0f%%\n\n",
			s.Stage, s.Step, s.Valid, s.Questions, s.MeanConfidence, s.QuestionerRewardMean, s.QuestionerRewardStd, 100*s.SolverAccuracy)
		return
	}
	fmt.Fprintf(p.W, "%s step %d: %d/%d valid, mean confidence %.2f, kept %d (%.0f%%), solver accuracy vs labels %.0f%%\n\n",
		s.Stage, s.Step, s.Valid, s.Questions, s.MeanConfidence, s.Kept, 100*s.KeptFraction, 100*s.SolverAccuracy)
}

func (p *QSPrinter) answers(as []QSAnswer, key string) string {
	out := make([]string, len(as))
	for i, a := range as {
		switch {
		case a.Answer == QSNoAnswer:
			out[i] = p.c(spyAnsiDim, "-")
		case QSSameAnswer(a.Answer, key):
			out[i] = p.c(spyAnsiGreen, qsOneLine(a.Answer, 12))
		default:
			out[i] = qsOneLine(a.Answer, 12)
		}
	}
	return strings.Join(out, " ")
}

func qsShow(a string) string {
	if a == "" {
		return "(none)"
	}
	return a
}

// qsOneLine flattens whitespace and shortens s to at most n runes.
func qsOneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "..."
	}
	return s
}
