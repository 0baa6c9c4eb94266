package report

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vzlocal/vzlocal/selfplay"
)

//go:embed page.html.tmpl
var pageTemplateText string

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"pct":  func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"base": filepath.Base,
}).Parse(pageTemplateText))

// pageData is what the template renders.
type pageData struct {
	Title      string
	Generated  string
	Compare    bool
	Runs       []runView
	Figures    []Figure
	ConfigDiff []tableRow
	// SummaryRows put compared runs side by side: one row per headline number, one column per run.
	SummaryRows []tableRow
}

type runView struct {
	Name, Dir  string
	Color      template.CSS
	Summary    []Field
	Timeline   []spanView
	Phases     []phaseTotal
	Switches   int
	Evals      []EvalRecord
	EvalSource string
	Roles      []string
	Config     string
	Games      GameSample
}

type spanView struct {
	PhaseSpan
	Width template.CSS // share of the run's steps, as a CSS percentage
	Color template.CSS
}

type phaseTotal struct {
	Phase string
	Steps int
	Color template.CSS
}

type tableRow struct {
	Key    string
	Values []string
}

func renderPage(w io.Writer, runs []*Run, figs []Figure) error {
	d := pageData{
		Generated: time.Now().UTC().Format("2006-01-02 15:04 MST"),
		Compare:   len(runs) > 1,
		Figures:   figs,
	}
	if d.Compare {
		names := make([]string, len(runs))
		for i, r := range runs {
			names[i] = r.Name
		}
		d.Title = "vzlocal: " + strings.Join(names, " vs ")
		d.ConfigDiff = configDiff(runs)
	} else {
		d.Title = "vzlocal run " + runs[0].Name
	}
	phases := phaseOrder(runs)
	for i, r := range runs {
		d.Runs = append(d.Runs, viewRun(r, i, phases))
	}
	if d.Compare {
		d.SummaryRows = sideBySide(d.Runs)
	}
	if err := pageTemplate.Execute(w, d); err != nil {
		return fmt.Errorf("render page: %w", err)
	}
	return nil
}

func viewRun(r *Run, idx int, phases []string) runView {
	v := runView{
		Name: r.Name, Dir: r.Dir, Color: cssColor(paletteColor(idx)),
		Summary: summarize(r), Evals: r.Evals, EvalSource: r.EvalSource,
		Config: string(r.Config), Games: r.Games,
	}
	phaseIdx := make(map[string]int)
	for i, p := range phases {
		phaseIdx[p] = i
	}
	phaseAt := make(map[string]int) // phase -> index in v.Phases
	for i, s := range Timeline(r.Steps) {
		col := cssColor(phaseColor(s.Phase, phaseIdx[s.Phase]))
		v.Timeline = append(v.Timeline, spanView{
			PhaseSpan: s,
			Width:     template.CSS(fmt.Sprintf("%.3f%%", 100*float64(s.Steps)/float64(len(r.Steps)))),
			Color:     col,
		})
		j, seen := phaseAt[s.Phase]
		if !seen {
			j = len(v.Phases)
			phaseAt[s.Phase] = j
			v.Phases = append(v.Phases, phaseTotal{Phase: phaseName(s.Phase), Color: col})
		}
		v.Phases[j].Steps += s.Steps
		if i > 0 {
			v.Switches++
		}
	}
	roles := make(map[string]bool)
	for _, e := range r.Evals {
		for k := range e.Roles {
			roles[k] = true
		}
	}
	for k := range roles {
		v.Roles = append(v.Roles, k)
	}
	sort.Strings(v.Roles)
	return v
}

// summarize gives the headline numbers of a run.
func summarize(r *Run) []Field {
	first, last := r.Steps[0], r.Steps[len(r.Steps)-1]
	var out []Field
	add := func(k, format string, a ...any) { out = append(out, Field{Key: k, Value: fmt.Sprintf(format, a...)}) }
	add("steps", "%d (step %d to %d)", len(r.Steps), first.Step, last.Step)
	counts := make(map[string]int)
	switches, skipped := 0, 0
	var peak int64
	for _, m := range r.Steps {
		counts[m.Phase]++
		if m.PhaseSwitched {
			switches++
		}
		if m.Skipped {
			skipped++
		}
		if m.PeakMemBytes > peak {
			peak = m.PeakMemBytes
		}
	}
	var parts []string
	for _, p := range phaseOrder([]*Run{r}) {
		parts = append(parts, fmt.Sprintf("%s %d", phaseName(p), counts[p]))
	}
	add("steps per phase", "%s; %d switches", strings.Join(parts, ", "), switches)
	if skipped > 0 {
		add("skipped steps", "%d (non-finite loss or gradient)", skipped)
	}
	// Rewards of different phases are different games' rewards: compare each phase with itself.
	for _, p := range phaseOrder([]*Run{r}) {
		var steps []selfplay.StepMetrics
		for _, m := range r.Steps {
			if m.Phase == p {
				steps = append(steps, m)
			}
		}
		add("reward mean, "+phaseName(p), "%.3f (first 10%% of its steps) → %.3f (last 10%%)",
			meanOf(window(steps, true), rewardOf), meanOf(window(steps, false), rewardOf))
	}
	// First and last tenth of the run, for what was measured (questioner/solver runs have no
	// decision accuracy).
	head, tail := window(r.Steps, true), window(r.Steps, false)
	if measured([]*Run{r}, []func(*selfplay.StepMetrics) float64{accOf}) {
		add("decision accuracy", "%.3f → %.3f", meanOf(head, accOf), meanOf(tail, accOf))
	}
	if measured([]*Run{r}, []func(*selfplay.StepMetrics) float64{lenOf}) {
		add("completion length", "%.0f → %.0f tokens", meanOf(head, lenOf), meanOf(tail, lenOf))
	}
	if n := len(r.Evals); n > 0 {
		e := r.Evals[n-1]
		add("last evaluation", "step %d: %.1f%% [%.1f%%, %.1f%%] over %d games", e.Step, 100*e.WinRate, 100*e.Low, 100*e.High, e.Games)
	}
	t0, err0 := time.Parse(time.RFC3339, first.Time)
	t1, err1 := time.Parse(time.RFC3339, last.Time)
	if err0 == nil && err1 == nil && t1.After(t0) {
		add("wall time", "%s", t1.Sub(t0).Round(time.Second))
	}
	if peak > 0 {
		add("peak memory", "%.2f GiB", float64(peak)/(1<<30))
	}
	if r.Games.Total > 0 {
		add("games logged", "%d", r.Games.Total)
	}
	return out
}

func rewardOf(m *selfplay.StepMetrics) float64 { return m.RewardMean }
func accOf(m *selfplay.StepMetrics) float64    { return m.DecisionAccuracy }
func lenOf(m *selfplay.StepMetrics) float64    { return m.CompletionLenMean }

// window is the first or last tenth of the steps (at least one).
func window(steps []selfplay.StepMetrics, head bool) []selfplay.StepMetrics {
	n := max(1, len(steps)/10)
	if head {
		return steps[:n]
	}
	return steps[len(steps)-n:]
}

func meanOf(steps []selfplay.StepMetrics, f func(*selfplay.StepMetrics) float64) float64 {
	sum := 0.0
	for i := range steps {
		sum += f(&steps[i])
	}
	return sum / float64(len(steps))
}

func phaseName(p string) string {
	if p == "" {
		return "(no phase)"
	}
	return p
}

// sideBySide merges the runs' summaries into rows, keeping the order in which keys first appear.
func sideBySide(runs []runView) []tableRow {
	index := make(map[string]int)
	var rows []tableRow
	for ri, r := range runs {
		for _, f := range r.Summary {
			i, ok := index[f.Key]
			if !ok {
				i = len(rows)
				index[f.Key] = i
				rows = append(rows, tableRow{Key: f.Key, Values: make([]string, len(runs))})
			}
			rows[i].Values[ri] = f.Value
		}
	}
	for _, row := range rows {
		for i, v := range row.Values {
			if v == "" {
				row.Values[i] = "—"
			}
		}
	}
	return rows
}

// configDiff lists the settings that differ between compared runs (flattened to dotted keys).
func configDiff(runs []*Run) []tableRow {
	flat := make([]map[string]string, len(runs))
	keys := make(map[string]bool)
	for i, r := range runs {
		flat[i] = make(map[string]string)
		if r.Config != nil {
			var obj any
			if json.Unmarshal(r.Config, &obj) == nil {
				flatten("", obj, flat[i])
			}
		}
		for k := range flat[i] {
			keys[k] = true
		}
	}
	var rows []tableRow
	for k := range keys {
		row := tableRow{Key: k}
		differ := false
		for i := range runs {
			v, ok := flat[i][k]
			if !ok {
				v = "—"
			}
			row.Values = append(row.Values, v)
			if v != row.Values[0] {
				differ = true
			}
		}
		if differ {
			rows = append(rows, row)
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Key < rows[j].Key })
	return rows
}

func flatten(prefix string, v any, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, el := range v {
			flatten(joinPath(prefix, k), el, out)
		}
	default:
		if s, ok := scalarString(v); ok {
			out[prefix] = s
			return
		}
		b, _ := json.Marshal(v)
		out[prefix] = string(b)
	}
}

func cssColor(c color.Color) template.CSS {
	r, g, b, _ := c.RGBA()
	return template.CSS(fmt.Sprintf("#%02x%02x%02x", r>>8, g>>8, b>>8))
}
