package selfplay

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// The default prompts of the Questioner/Solver game. Our own wording; the output formats
// (<question> with options A) to D), <answer>X</answer>, \boxed{X}) are games.md section 2's,
// which the parsers in qs_rules.go rely on.
//
//go:embed prompts/qs_*.tmpl
var qsPromptFS embed.FS

// Names of the Questioner/Solver game's templates; `--prompts DIR` may override either.
const (
	QSQuestionerPrompt = "qs_questioner.tmpl"
	QSSolverPrompt     = "qs_solver.tmpl"
)

var qsPromptNames = []string{QSQuestionerPrompt, QSSolverPrompt}

// QSPromptData is what the templates are executed with.
type QSPromptData struct {
	// Question is the Questioner's question, stem and options (the Solver prompt; empty for
	// the Questioner).
	Question string
}

// QSPrompts are the parsed, checked templates of the Questioner/Solver game.
type QSPrompts struct {
	*promptSet
}

// LoadQSPrompts parses the embedded templates, replaced by the files of the same name in dir
// when dir is not empty. Files in dir that do not start with "qs_" belong to other games and
// are ignored; an unknown qs_ file is an error (a typo would otherwise be silently ignored).
// Every template is executed at load time and must show what the parsers need.
func LoadQSPrompts(dir string) (*QSPrompts, error) {
	set, err := loadPromptSet(qsPromptFS, "questioner/solver", "qs_", qsPromptNames, dir)
	if err != nil {
		return nil, err
	}
	p := &QSPrompts{set}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

// Render executes one template.
func (p *QSPrompts) Render(name string, d QSPromptData) (string, error) { return p.render(name, d) }

// sampleQSQuestion is the question the Solver template is checked with.
const sampleQSQuestion = "sample question 4b2d: what colour is the cube? A) red B) blue C) green D) gray"

// check executes both templates and rejects those that do not ask for the formats the parsers
// read, or (the Solver's) do not show the question.
func (p *QSPrompts) check() error {
	var errs []string
	need := func(name string, ok bool, what string) {
		if !ok {
			errs = append(errs, fmt.Sprintf("prompt %s: %s", p.sources[name], what))
		}
	}
	q, err := p.Render(QSQuestionerPrompt, QSPromptData{})
	if err != nil {
		errs = append(errs, err.Error())
	} else {
		need(QSQuestionerPrompt, strings.Contains(q, "<question>") && strings.Contains(q, "</question>"),
			"does not ask for the question inside <question>...</question>")
		need(QSQuestionerPrompt, strings.Contains(q, "<answer>") && strings.Contains(q, "</answer>"),
			"does not ask for the answer inside <answer>...</answer>")
		need(QSQuestionerPrompt, strings.Contains(q, "A)") && strings.Contains(q, "D)"),
			"does not ask for four options marked A) B) C) D)")
	}
	s, err := p.Render(QSSolverPrompt, QSPromptData{Question: sampleQSQuestion})
	if err != nil {
		errs = append(errs, err.Error())
	} else {
		need(QSSolverPrompt, strings.Contains(s, sampleQSQuestion), "does not show the question (print .Question)")
		need(QSSolverPrompt, strings.Contains(s, `\boxed{`), `does not ask for the answer inside \boxed{...}`)
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// QSPromptFiles lists the embedded default templates, for users who want to start from them.
func QSPromptFiles() (fs.FS, []string) {
	sub, _ := fs.Sub(qsPromptFS, "prompts")
	return sub, append([]string(nil), qsPromptNames...)
}
