package report

import (
	"errors"
	"fmt"
	"image/color"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/vzlocal/vzlocal/internal/atomicfile"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/vzlocal/vzlocal/selfplay"
)

// Figure is one chart of the report: the PNG file name in the output folder, or, when the runs
// hold no data for it, the reason it was not drawn.
type Figure struct {
	File    string
	Title   string
	Caption string
	Missing string
}

// figureSpec builds one chart for a set of runs; ok false means the runs have no data for it, and
// the page says why (missing, or by default that the metrics were never measured).
type figureSpec struct {
	file, title, caption string
	build                func(c *chart, runs []*Run) (ok bool, err error)
	missing              string
}

const notMeasured = "not measured in these runs (every value is zero)"

var figureSpecs = []figureSpec{
	{file: "reward.png", title: "Reward mean by phase",
		caption: "Mean reward of the trained samples per optimizer step; markers tell the phase.",
		build:   buildReward},
	{file: "decision.png", title: "Decision accuracy and abstain rate",
		caption: "Observer accuracy and abstain rate per step with their EMAs (what Iterative-SPO switches on); vertical lines mark phase switches.",
		build:   buildDecision},
	{file: "kl.png", title: "KL to the reference",
		caption: "k3 estimate of KL(πθ ‖ πref) per token, per step.",
		build:   buildKL},
	{file: "logratio.png", title: "Rollout vs trainer: |log πθ − log πb| per token",
		caption: "Mismatch between the trainer and the quantized rollout engine: mean and 99th percentile.",
		build:   buildLogRatio},
	{file: "completion.png", title: "Completion length",
		caption: "Tokens per completion: mean and longest.",
		build:   buildCompletion},
	{file: "winrate.png", title: "Win rate against the reference",
		caption: "Evaluation win rate with its Wilson 95% interval; the dotted line is an even match.",
		build:   buildWinRate, missing: "no evaluation recorded (eval.jsonl, or scheduled evaluation during training)"},
	{file: "throughput.png", title: "Throughput",
		caption: "Tokens per second of rollouts (llama.cpp) and of the gradient engine.",
		build:   buildThroughput},
	{file: "steptime.png", title: "Time per step",
		caption: "Seconds per optimizer step spent in rollouts, scoring, the gradient engine, the optimizer and the adapter swap.",
		build:   buildStepTime},
}

// writeFigures renders every chart into outDir.
func writeFigures(runs []*Run, outDir string) ([]Figure, error) {
	xMin, xMax := math.Inf(1), math.Inf(-1)
	for _, r := range runs {
		xMin = math.Min(xMin, float64(r.Steps[0].Step))
		xMax = math.Max(xMax, float64(r.Steps[len(r.Steps)-1].Step))
	}
	var figs []Figure
	for _, spec := range figureSpecs {
		fig := Figure{File: spec.file, Title: spec.title, Caption: spec.caption}
		c := newChart(spec.title, "")
		// Every chart spans the same steps, so charts stacked on the page line up (the win rate
		// would otherwise start at the first evaluation).
		c.p.X.Min, c.p.X.Max = xMin, xMax
		ok, err := spec.build(c, runs)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", spec.file, err)
		}
		if !ok {
			// A chart drawn by an earlier report of the same folder must not linger.
			if err := os.Remove(filepath.Join(outDir, spec.file)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("chart %s: %w", spec.file, err)
			}
			fig.File, fig.Missing = "", spec.missing
			if fig.Missing == "" {
				fig.Missing = notMeasured
			}
			figs = append(figs, fig)
			continue
		}
		data, err := c.png()
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", spec.file, err)
		}
		if err := atomicfile.WriteFile(filepath.Join(outDir, spec.file), data); err != nil {
			return nil, err
		}
		figs = append(figs, fig)
	}
	return figs, nil
}

// series is the per-step values of one metric of one run.
func series(r *Run, f func(m *selfplay.StepMetrics) float64) plotter.XYs {
	xys := make(plotter.XYs, 0, len(r.Steps))
	for i := range r.Steps {
		xys = append(xys, plotter.XY{X: float64(r.Steps[i].Step), Y: f(&r.Steps[i])})
	}
	return finite(xys)
}

// runColor colours runs in a comparison; a single run colours its metrics instead.
func runColor(i int) color.Color { return paletteColor(i) }

// metricLines draws, per run, one line per metric: in a single run each metric gets its own colour
// and its name in the legend; in a comparison each run gets a colour and each metric a dash style,
// and the legend says both. Metrics that are zero at every step of every run were not measured
// (metrics.jsonl leaves unmeasured fields at zero: no log-probs from Ollama, beta_KL = 0): then
// nothing is drawn and drawn is false.
func metricLines(c *chart, runs []*Run, names []string, fs []func(m *selfplay.StepMetrics) float64) (drawn bool, err error) {
	if !measured(runs, fs) {
		return false, nil
	}
	for ri, r := range runs {
		for mi, f := range fs {
			col, dash, label := paletteColor(mi), []vg.Length(nil), names[mi]
			if len(runs) > 1 {
				col, dash = runColor(ri), lineStyles[mi%len(lineStyles)]
				label = r.Name
				if len(fs) > 1 {
					label = r.Name + ": " + names[mi]
				}
			}
			if err := c.line(series(r, f), col, dash, vg.Points(1.4), label); err != nil {
				return false, err
			}
		}
	}
	return true, nil
}

// hasPhases says whether some step of some run names its training phase.
func hasPhases(runs []*Run) bool {
	for _, r := range runs {
		for i := range r.Steps {
			if r.Steps[i].Phase != "" {
				return true
			}
		}
	}
	return false
}

// measured says whether any of the metrics is non-zero at some step of some run.
func measured(runs []*Run, fs []func(m *selfplay.StepMetrics) float64) bool {
	for _, r := range runs {
		for i := range r.Steps {
			for _, f := range fs {
				if v := f(&r.Steps[i]); v != 0 && !math.IsNaN(v) {
					return true
				}
			}
		}
	}
	return false
}

func buildReward(c *chart, runs []*Run) (bool, error) {
	c.p.Y.Label.Text = "reward mean"
	phases := phaseOrder(runs)
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.CrossGlyph{}}
	for ri, r := range runs {
		lineCol := color.Color(grey)
		if len(runs) > 1 {
			lineCol = runColor(ri)
		}
		label := ""
		if len(runs) > 1 {
			label = r.Name
		}
		if err := c.line(series(r, func(m *selfplay.StepMetrics) float64 { return m.RewardMean }), lineCol, nil, vg.Points(1), label); err != nil {
			return false, err
		}
		for pi, ph := range phases {
			var xys plotter.XYs
			for _, m := range r.Steps {
				if m.Phase == ph {
					xys = append(xys, plotter.XY{X: float64(m.Step), Y: m.RewardMean})
				}
			}
			col, shape := phaseColor(ph, pi), draw.GlyphDrawer(draw.CircleGlyph{})
			if len(runs) > 1 {
				col, shape = runColor(ri), shapes[pi%len(shapes)]
			}
			if err := c.points(finite(xys), col, shape, ""); err != nil {
				return false, err
			}
		}
	}
	// Legend of phases: colours for one run, shapes for several.
	for pi, ph := range phases {
		col, shape := phaseColor(ph, pi), draw.GlyphDrawer(draw.CircleGlyph{})
		if len(runs) > 1 {
			col, shape = color.Black, shapes[pi%len(shapes)]
		}
		s := &plotter.Scatter{GlyphStyle: draw.GlyphStyle{Color: col, Radius: vg.Points(3), Shape: shape}}
		c.legend.Add(phaseName(ph)+" phase", s)
	}
	return true, nil
}

func buildDecision(c *chart, runs []*Run) (bool, error) {
	c.p.Y.Label.Text = "rate"
	c.yRange(0, 1)
	decisionMetrics := []func(m *selfplay.StepMetrics) float64{accOf,
		func(m *selfplay.StepMetrics) float64 { return m.AbstainRate },
		func(m *selfplay.StepMetrics) float64 { return m.AccEMA },
		func(m *selfplay.StepMetrics) float64 { return m.AbstainEMA },
	}
	// Both games measure these every step (spy game: the observer's votes; questioner/solver:
	// solver accuracy), so a run whose steps name a phase shows them even when they are all zero
	// (a random model's 0% accuracy is a result, not a missing metric).
	if !measured(runs, decisionMetrics) && !hasPhases(runs) {
		return false, nil
	}
	if len(runs) == 1 {
		r := runs[0]
		acc, abst := paletteColor(0), paletteColor(1)
		lines := []struct {
			label  string
			col    color.Color
			dashes []vg.Length
			f      func(m *selfplay.StepMetrics) float64
		}{
			{"accuracy", acc, nil, accOf},
			{"accuracy EMA", acc, dashed, func(m *selfplay.StepMetrics) float64 { return m.AccEMA }},
			{"abstain", abst, nil, func(m *selfplay.StepMetrics) float64 { return m.AbstainRate }},
			{"abstain EMA", abst, dashed, func(m *selfplay.StepMetrics) float64 { return m.AbstainEMA }},
		}
		for _, l := range lines {
			width := vg.Points(1.4)
			if l.dashes != nil {
				width = vg.Points(1)
			}
			if err := c.line(series(r, l.f), l.col, l.dashes, width, l.label); err != nil {
				return false, err
			}
		}
	} else {
		if _, err := metricLines(c, runs, []string{"accuracy", "abstain"}, decisionMetrics[:2]); err != nil {
			return false, err
		}
	}
	switches := false
	for ri, r := range runs {
		var xs []float64
		for _, m := range r.Steps {
			if m.PhaseSwitched {
				xs = append(xs, float64(m.Step))
			}
		}
		if len(xs) == 0 {
			continue
		}
		switches = true
		col := color.Color(color.Gray{Y: 90})
		if len(runs) > 1 {
			col = translucent(runColor(ri), 200)
		}
		c.p.Add(vLines{xs: xs, style: draw.LineStyle{Color: col, Width: vg.Points(0.9), Dashes: dotted}})
	}
	if switches {
		label := "phase switch"
		if len(runs) > 1 {
			label = "phase switch (run colour)"
		}
		c.legendEntry(label, color.Gray{Y: 90}, dotted)
	}
	return true, nil
}

func buildKL(c *chart, runs []*Run) (bool, error) {
	c.p.Y.Label.Text = "KL (nats/token)"
	c.fromZero()
	return metricLines(c, runs, []string{"KL"}, []func(m *selfplay.StepMetrics) float64{
		func(m *selfplay.StepMetrics) float64 { return m.KL },
	})
}

func buildLogRatio(c *chart, runs []*Run) (bool, error) {
	c.p.Y.Label.Text = "|log-ratio| (nats)"
	c.fromZero()
	return metricLines(c, runs, []string{"mean", "p99"}, []func(m *selfplay.StepMetrics) float64{
		func(m *selfplay.StepMetrics) float64 { return m.LogRatioMean },
		func(m *selfplay.StepMetrics) float64 { return m.LogRatioP99 },
	})
}

func buildCompletion(c *chart, runs []*Run) (bool, error) {
	c.p.Y.Label.Text = "tokens"
	c.fromZero()
	return metricLines(c, runs, []string{"mean", "max"}, []func(m *selfplay.StepMetrics) float64{
		func(m *selfplay.StepMetrics) float64 { return m.CompletionLenMean },
		func(m *selfplay.StepMetrics) float64 { return float64(m.CompletionLenMax) },
	})
}

func buildThroughput(c *chart, runs []*Run) (bool, error) {
	c.p.Y.Label.Text = "tokens/s"
	c.fromZero()
	return metricLines(c, runs, []string{"rollout", "train"}, []func(m *selfplay.StepMetrics) float64{
		func(m *selfplay.StepMetrics) float64 { return m.RolloutTokPerSec },
		func(m *selfplay.StepMetrics) float64 { return m.TrainTokPerSec },
	})
}

func buildStepTime(c *chart, runs []*Run) (bool, error) {
	c.p.Y.Label.Text = "seconds"
	c.fromZero()
	return metricLines(c, runs, []string{"rollout", "score", "train", "optimizer", "adapter swap"}, []func(m *selfplay.StepMetrics) float64{
		func(m *selfplay.StepMetrics) float64 { return m.RolloutSeconds },
		func(m *selfplay.StepMetrics) float64 { return m.ScoreSeconds },
		func(m *selfplay.StepMetrics) float64 { return m.TrainSeconds },
		func(m *selfplay.StepMetrics) float64 { return m.OptimSeconds },
		func(m *selfplay.StepMetrics) float64 { return m.SwapSeconds },
	})
}

func buildWinRate(c *chart, runs []*Run) (bool, error) {
	c.p.Y.Label.Text = "win rate"
	c.yRange(0, 1)
	drawn := false
	for ri, r := range runs {
		if len(r.Evals) == 0 {
			continue
		}
		drawn = true
		col := paletteColor(ri)
		xs := make([]float64, len(r.Evals))
		lows := make([]float64, len(r.Evals))
		highs := make([]float64, len(r.Evals))
		pts := make(plotter.XYs, len(r.Evals))
		errs := make(plotter.YErrors, len(r.Evals))
		for i, e := range r.Evals {
			xs[i], lows[i], highs[i] = float64(e.Step), e.Low, e.High
			pts[i] = plotter.XY{X: float64(e.Step), Y: e.WinRate}
			errs[i].Low, errs[i].High = e.WinRate-e.Low, e.High-e.WinRate
		}
		if err := c.band(xs, lows, highs, translucent(col, 50)); err != nil {
			return false, err
		}
		bars, err := plotter.NewYErrorBars(struct {
			plotter.XYs
			plotter.YErrors
		}{pts, errs})
		if err != nil {
			return false, err
		}
		bars.LineStyle = draw.LineStyle{Color: col, Width: vg.Points(1)}
		c.p.Add(bars)
		label := "win rate (95% interval)"
		if len(runs) > 1 {
			label = r.Name
		}
		if err := c.line(pts, col, nil, vg.Points(1.4), ""); err != nil {
			return false, err
		}
		if err := c.points(pts, col, draw.CircleGlyph{}, ""); err != nil {
			return false, err
		}
		thumbLine := &plotter.Line{LineStyle: draw.LineStyle{Color: col, Width: vg.Points(1.4)}}
		thumbBand := &plotter.Polygon{Color: translucent(col, 50)}
		c.legend.Add(label, thumbBand, thumbLine)
		if len(runs) == 1 {
			if err := roleLines(c, r.Evals); err != nil {
				return false, err
			}
		}
	}
	if drawn {
		c.p.Add(hLine{y: 0.5, style: draw.LineStyle{Color: grey, Width: vg.Points(1), Dashes: dotted}})
		c.legendEntry("even (50%)", grey, dotted)
	}
	return drawn, nil
}

// roleLines adds the win rate per role (as spy, as civilian, ...) of one run's evaluations, without
// intervals (the table on the page has them): half the games each, so twice as wide.
func roleLines(c *chart, evals []EvalRecord) error {
	roles := make(map[string]bool)
	for _, e := range evals {
		for name := range e.Roles {
			roles[name] = true
		}
	}
	names := make([]string, 0, len(roles))
	for name := range roles {
		names = append(names, name)
	}
	sort.Strings(names)
	styles := lineStyles[1:]
	for i, name := range names {
		var xys plotter.XYs
		for _, e := range evals {
			if rr, ok := e.Roles[name]; ok && rr.Games > 0 {
				xys = append(xys, plotter.XY{X: float64(e.Step), Y: rr.WinRate})
			}
		}
		if err := c.line(xys, paletteColor(1+i), styles[i%len(styles)], vg.Points(1.2), "as "+name); err != nil {
			return err
		}
	}
	return nil
}

// Known phases get fixed colours, so "clue" looks the same in every report; they avoid the first
// run colours (blue, orange), so a comparison's timeline is not read as a run legend.
var phaseColors = map[string]color.Color{
	"decision":   palette[2], // bluish green
	"clue":       palette[3], // reddish purple
	"questioner": palette[4], // sky blue
	"solver":     palette[5], // vermillion
}

func phaseColor(phase string, i int) color.Color {
	if c, ok := phaseColors[phase]; ok {
		return c
	}
	return paletteColor(6 + i)
}

// phaseOrder lists the phases of the runs in order of first appearance.
func phaseOrder(runs []*Run) []string {
	first := make(map[string]int)
	for _, r := range runs {
		for _, m := range r.Steps {
			if _, ok := first[m.Phase]; !ok {
				first[m.Phase] = len(first)
			}
		}
	}
	out := make([]string, 0, len(first))
	for ph := range first {
		out = append(out, ph)
	}
	sort.Slice(out, func(i, j int) bool { return first[out[i]] < first[out[j]] })
	return out
}
