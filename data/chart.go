package data

import (
	"encoding/json"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
)

// Chart types.
const (
	ChartBar  = "bar"
	ChartLine = "line"
	ChartPie  = "pie"
)

// ChartOptions configures chart pairs. Zero values take the defaults.
type ChartOptions struct {
	N          int          // number of pairs (GenerateCharts only)
	Seed       int64        // pair i is a function of (Seed, i) alone
	Width      int          // default 480
	Height     int          // default 360
	Types      []string     // default bar, line, pie (drawn in turn by pair index)
	MinChanges int          // values replaced in the modified chart, default 1
	MaxChanges int          // default 2
	Workers    int          `json:"-"`
	Progress   ProgressFunc `json:"-"`
}

func (o *ChartOptions) withDefaults() (ChartOptions, error) {
	c := *o
	if c.Width == 0 {
		c.Width = 480
	}
	if c.Height == 0 {
		c.Height = 360
	}
	if len(c.Types) == 0 {
		c.Types = []string{ChartBar, ChartLine, ChartPie}
	}
	if c.MinChanges == 0 {
		c.MinChanges = 1
	}
	if c.MaxChanges == 0 {
		c.MaxChanges = max(2, c.MinChanges)
	}
	if c.Width < 240 || c.Height < 180 || c.Width > 4096 || c.Height > 4096 {
		return c, fmt.Errorf("charts: image size %dx%d outside 240x180..4096x4096", c.Width, c.Height)
	}
	if c.MinChanges < 1 || c.MaxChanges < c.MinChanges || c.MaxChanges > 3 {
		return c, fmt.Errorf("charts: changes %d..%d invalid (1 <= min <= max <= 3)", c.MinChanges, c.MaxChanges)
	}
	for _, t := range c.Types {
		if t != ChartBar && t != ChartLine && t != ChartPie {
			return c, fmt.Errorf("charts: unknown chart type %q (bar, line, pie)", t)
		}
	}
	return c, nil
}

// ChartDetail is the Detail of a chart pair: the data of both charts and where it was drawn.
type ChartDetail struct {
	Type       string        `json:"type"`
	Title      string        `json:"title"`
	XLabel     string        `json:"x_label,omitempty"`
	YLabel     string        `json:"y_label,omitempty"`
	Categories []string      `json:"categories"`
	Series     []ChartSeries `json:"series"`   // for a pie: one entry per slice, for its colour
	Original   [][]float64   `json:"original"` // [series][category]
	Modified   [][]float64   `json:"modified"`
	Changed    []ChartCell   `json:"changed"`
	// Axis maps values to pixels for bar and line charts: value v is drawn at
	// y = Plot.Y1 - (v-Min)/(Max-Min)*(Plot.Y1-Plot.Y0). The axis is the same in both charts.
	Axis *ChartAxis `json:"axis,omitempty"`
	// Pie is the circle of a pie chart; slices run clockwise from 12 o'clock in category order.
	Pie *ChartPieGeom `json:"pie,omitempty"`
	// Marks says where each value was drawn, [series][category], in each chart.
	OriginalMarks [][]ChartMark `json:"original_marks"`
	ModifiedMarks [][]ChartMark `json:"modified_marks"`
}

// ChartSeries is one data series with its colour.
type ChartSeries struct {
	Name  string   `json:"name"`
	Color string   `json:"color"`
	RGB   [3]uint8 `json:"rgb"`
}

// ChartCell is one replaced value.
type ChartCell struct {
	Series   int     `json:"series"`
	Category int     `json:"category"`
	Before   float64 `json:"before"`
	After    float64 `json:"after"`
}

// ChartAxis is the value axis of a bar or line chart.
type ChartAxis struct {
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	Step float64 `json:"step"`
	Plot Box     `json:"plot"`
}

// ChartPieGeom is the circle of a pie chart in pixels.
type ChartPieGeom struct {
	CX float64 `json:"cx"`
	CY float64 `json:"cy"`
	R  float64 `json:"r"`
}

// ChartMark is where one value was drawn: the top centre of a bar, the centre of a line's point,
// or the angles of a pie slice (degrees clockwise from 12 o'clock); Box covers the mark and its
// value label.
type ChartMark struct {
	X        float64 `json:"x,omitempty"`
	Y        float64 `json:"y,omitempty"`
	StartDeg float64 `json:"start_deg,omitempty"`
	EndDeg   float64 `json:"end_deg,omitempty"`
	Box      Box     `json:"box"`
}

// chartTopic is a plausible subject for random chart data.
type chartTopic struct {
	title, xLabel, yLabel string
	cats                  []string
	series                []string
	lo, hi                int
	ordered               bool // categories are a sequence (months, years): take a window
}

var chartTopics = []chartTopic{
	{"Monthly sales", "Month", "Units sold", []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}, []string{"2023", "2024"}, 10, 95, true},
	{"Rainfall by city", "City", "Rainfall (mm)", []string{"Oslo", "Lima", "Cairo", "Delhi", "Tokyo", "Paris", "Quito", "Perth"}, []string{"Spring", "Autumn"}, 5, 80, false},
	{"Fruit harvest", "Fruit", "Tonnes", []string{"Apples", "Pears", "Plums", "Grapes", "Mangos", "Kiwis", "Lemons"}, []string{"North farm", "South farm"}, 12, 90, false},
	{"Museum visitors", "Year", "Visitors (thousands)", []string{"2016", "2017", "2018", "2019", "2020", "2021", "2022", "2023", "2024"}, []string{"City museum", "Art gallery"}, 20, 99, true},
	{"Product revenue", "Product", "Revenue ($k)", []string{"Alpha", "Beta", "Gamma", "Delta", "Sigma", "Omega"}, []string{"Online", "Stores"}, 15, 85, false},
	{"Energy mix", "Source", "Output (TWh)", []string{"Solar", "Wind", "Hydro", "Gas", "Coal", "Nuclear"}, []string{"Region A", "Region B"}, 8, 70, false},
}

var chartPalette = []struct {
	name string
	rgb  [3]uint8
}{
	{"blue", [3]uint8{31, 119, 180}}, {"orange", [3]uint8{255, 127, 14}}, {"green", [3]uint8{44, 160, 44}},
	{"red", [3]uint8{214, 39, 40}}, {"purple", [3]uint8{148, 103, 189}}, {"brown", [3]uint8{140, 86, 75}},
	{"pink", [3]uint8{227, 119, 194}}, {"gray", [3]uint8{127, 127, 127}}, {"olive", [3]uint8{188, 189, 34}},
	{"cyan", [3]uint8{23, 190, 207}},
}

// GenerateCharts writes opts.N chart pairs into outDir.
func GenerateCharts(outDir string, opts ChartOptions) (Report, error) {
	c, err := opts.withDefaults()
	if err != nil {
		return Report{}, err
	}
	settings := c
	settings.N, settings.Workers, settings.Progress = 0, 0, nil
	return runIndexed(outDir, "charts", c.N, settings, c.Workers, c.Progress,
		func(i int) (*Pair, *image.RGBA, *image.RGBA, error) { return RenderChartPair(i, c) })
}

// RenderChartPair makes chart pair number index in memory.
func RenderChartPair(index int, opts ChartOptions) (*Pair, *image.RGBA, *image.RGBA, error) {
	c, err := opts.withDefaults()
	if err != nil {
		return nil, nil, nil, err
	}
	seed := mixSeed(c.Seed, index)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6368617274))
	d := sampleChart(rng, c.Types[index%len(c.Types)], c.MinChanges+rng.IntN(c.MaxChanges-c.MinChanges+1))
	geo, err := chartLayout(&d, c.Width, c.Height)
	if err != nil {
		return nil, nil, nil, err
	}
	faces, err := chartFaces()
	if err != nil {
		return nil, nil, nil, err
	}
	imgO, marksO, err := drawChart(&d, d.Original, geo, faces)
	if err != nil {
		return nil, nil, nil, err
	}
	imgM, marksM, err := drawChart(&d, d.Modified, geo, faces)
	if err != nil {
		return nil, nil, nil, err
	}
	d.OriginalMarks, d.ModifiedMarks = marksO, marksM
	p := &Pair{ID: pairID(index), Kind: KindChart, Width: c.Width, Height: c.Height, Seed: seed}
	p.Items, p.Changes = chartItems(&d)
	if p.Detail, err = json.Marshal(d); err != nil {
		return nil, nil, nil, fmt.Errorf("chart pair %d: %w", index, err)
	}
	return p, imgO, imgM, nil
}

// sampleChart draws a topic, its data and k replaced values.
func sampleChart(rng *rand.Rand, typ string, k int) ChartDetail {
	t := chartTopics[rng.IntN(len(chartTopics))]
	d := ChartDetail{Type: typ, Title: t.title}
	nSeries, nCat := 1, 4+rng.IntN(4)
	switch typ {
	case ChartBar:
		nSeries = 1 + rng.IntN(2)
		nCat = min(nCat, 7-nSeries)
	case ChartLine:
		nSeries = 1 + rng.IntN(2)
		nCat = 5 + rng.IntN(4)
	case ChartPie:
		nCat = 3 + rng.IntN(4)
	}
	nCat = min(nCat, len(t.cats))
	if t.ordered {
		s := rng.IntN(len(t.cats) - nCat + 1)
		d.Categories = slices.Clone(t.cats[s : s+nCat])
	} else {
		for _, i := range rng.Perm(len(t.cats))[:nCat] {
			d.Categories = append(d.Categories, t.cats[i])
		}
	}
	if typ != ChartPie {
		d.XLabel, d.YLabel = t.xLabel, t.yLabel
	}
	colors := distinctColors(rng.Perm(len(chartPalette)))
	names := t.series
	if nSeries == 1 {
		names = []string{t.series[rng.IntN(len(t.series))]}
	}
	if typ == ChartPie {
		// a pie has one series; its colours are per slice
		names = []string{t.yLabel}
		for i := range d.Categories {
			p := chartPalette[colors[i]]
			d.Series = append(d.Series, ChartSeries{Name: d.Categories[i], Color: p.name, RGB: p.rgb})
		}
	} else {
		for s := 0; s < nSeries; s++ {
			p := chartPalette[colors[s]]
			d.Series = append(d.Series, ChartSeries{Name: names[s], Color: p.name, RGB: p.rgb})
		}
	}
	lo := t.lo
	if typ == ChartPie {
		lo = max(lo, t.hi/5) // no sliver slices whose labels collide
	}
	span := t.hi - lo
	d.Original = make([][]float64, len(names))
	for s := range d.Original {
		d.Original[s] = make([]float64, nCat)
		for i := range d.Original[s] {
			d.Original[s][i] = float64(lo + rng.IntN(span+1))
		}
	}
	d.Modified = make([][]float64, len(names))
	for s := range d.Modified {
		d.Modified[s] = slices.Clone(d.Original[s])
	}
	cells := rng.Perm(len(names) * nCat)[:min(k, len(names)*nCat)]
	slices.Sort(cells)
	for _, cell := range cells {
		s, i := cell/nCat, cell%nCat
		before := d.Original[s][i]
		after := before
		// far enough from the old value to be seen: a fifth of the data range at least
		for math.Abs(after-before) < float64(span)/5 {
			after = float64(lo + rng.IntN(span+1))
		}
		d.Modified[s][i] = after
		d.Changed = append(d.Changed, ChartCell{Series: s, Category: i, Before: before, After: after})
	}
	return d
}

// distinctColors reorders a permutation of the palette so that the first colours are far apart
// (olive next to green, or gray next to brown, is hard to tell apart in a small chart).
func distinctColors(perm []int) []int {
	var first, rest []int
	for _, i := range perm {
		ok := true
		for _, j := range first {
			a, b := chartPalette[i].rgb, chartPalette[j].rgb
			dr, dg, db := float64(a[0])-float64(b[0]), float64(a[1])-float64(b[1]), float64(a[2])-float64(b[2])
			if math.Sqrt(dr*dr+dg*dg+db*db) < 150 {
				ok = false
				break
			}
		}
		if ok {
			first = append(first, i)
		} else {
			rest = append(rest, i)
		}
	}
	return append(first, rest...)
}

func formatValue(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// chartItems describes every value in words and every replaced value as a change. The boxes of a
// bar or line change cover the mark and its label in both charts (for a line also the segments to
// its neighbours); in a pie every slice moves when one value changes, so the box is the whole pie
// with its labels.
func chartItems(d *ChartDetail) ([]Item, []Change) {
	var items []Item
	desc := func(s, i int, v float64) string {
		if d.Type == ChartPie {
			return fmt.Sprintf("%s slice: %s", d.Categories[i], formatValue(v))
		}
		return fmt.Sprintf("%s for %s: %s", d.Series[s].Name, d.Categories[i], formatValue(v))
	}
	for s := range d.Original {
		for i := range d.Categories {
			items = append(items, Item{Original: desc(s, i, d.Original[s][i]), Modified: desc(s, i, d.Modified[s][i])})
		}
	}
	var pieBox Box
	if d.Type == ChartPie {
		for _, marks := range [][][]ChartMark{d.OriginalMarks, d.ModifiedMarks} {
			for _, m := range marks[0] {
				pieBox = unionBox(pieBox, m.Box)
			}
		}
	}
	var changes []Change
	for _, c := range d.Changed {
		b := unionBox(d.OriginalMarks[c.Series][c.Category].Box, d.ModifiedMarks[c.Series][c.Category].Box)
		if d.Type == ChartPie {
			b = pieBox
		}
		changes = append(changes, Change{Kind: "value", Before: desc(c.Series, c.Category, c.Before),
			After: desc(c.Series, c.Category, c.After), Box: b})
	}
	return items, changes
}
