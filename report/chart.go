package report

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Chart size and resolution: 9 x 3.4 inches at 120 dpi is 1080 x 408 pixels, sharp when the page
// shows it at about 1000 pixels wide.
const (
	chartWidth  = 9 * vg.Inch
	chartHeight = 3.4 * vg.Inch
	chartDPI    = 120
)

// palette is Okabe and Ito's colour-blind safe set (black dropped: it is the axes' colour).
var palette = []color.Color{
	color.RGBA{0, 114, 178, 255},   // blue
	color.RGBA{230, 159, 0, 255},   // orange
	color.RGBA{0, 158, 115, 255},   // bluish green
	color.RGBA{204, 121, 167, 255}, // reddish purple
	color.RGBA{86, 180, 233, 255},  // sky blue
	color.RGBA{213, 94, 0, 255},    // vermillion
	color.RGBA{240, 228, 66, 255},  // yellow
}

func paletteColor(i int) color.Color { return palette[i%len(palette)] }

var (
	dashed   = []vg.Length{vg.Points(6), vg.Points(3)}
	dotted   = []vg.Length{vg.Points(1.5), vg.Points(2.5)}
	dashDot  = []vg.Length{vg.Points(7), vg.Points(2.5), vg.Points(1.5), vg.Points(2.5)}
	longDash = []vg.Length{vg.Points(12), vg.Points(4)}
	// lineStyles tell apart the metrics of one chart when colour tells apart the runs.
	lineStyles = [][]vg.Length{nil, dashed, dotted, dashDot, longDash}
	grey       = color.Gray{Y: 150}
)

// chart is a plot with its legend kept apart, so the legend can sit in a column right of the data
// area instead of on top of the curves.
type chart struct {
	p      *plot.Plot
	legend plot.Legend
}

func newChart(title, ylabel string) *chart {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text = "optimizer step"
	p.Y.Label.Text = ylabel
	p.Y.Tick.Marker = niceTicks{}
	p.X.Tick.Marker = niceTicks{}
	p.Add(plotter.NewGrid())
	leg := plot.NewLegend()
	leg.Top, leg.Left = true, true
	leg.TextStyle.Font.Size = vg.Points(10)
	leg.ThumbnailWidth = vg.Points(24)
	leg.Padding = vg.Points(3)
	return &chart{p: p, legend: leg}
}

// line adds a polyline; label "" keeps it out of the legend.
func (c *chart) line(xys plotter.XYs, col color.Color, dashes []vg.Length, width vg.Length, label string) error {
	if len(xys) == 0 {
		return nil
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	l.LineStyle = draw.LineStyle{Color: col, Width: width, Dashes: dashes}
	c.p.Add(l)
	if label != "" {
		c.legend.Add(label, l)
	}
	return nil
}

// points adds markers; label "" keeps them out of the legend.
func (c *chart) points(xys plotter.XYs, col color.Color, shape draw.GlyphDrawer, label string) error {
	if len(xys) == 0 {
		return nil
	}
	s, err := plotter.NewScatter(xys)
	if err != nil {
		return err
	}
	s.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(2.6), Shape: shape}
	c.p.Add(s)
	if label != "" {
		c.legend.Add(label, s)
	}
	return nil
}

// legendEntry adds a legend line for a style drawn elsewhere (e.g. switch markers).
func (c *chart) legendEntry(label string, col color.Color, dashes []vg.Length) {
	l := &plotter.Line{LineStyle: draw.LineStyle{Color: col, Width: vg.Points(1.2), Dashes: dashes}}
	c.legend.Add(label, l)
}

// yRange fixes the y axis (rates live in [0, 1] whatever the data).
func (c *chart) yRange(min, max float64) { c.p.Y.Min, c.p.Y.Max = min, max }

// fromZero starts the y axis at 0 for quantities that cannot be negative, so a small value is not
// drawn at the bottom of the chart as if it were nothing. Call before adding data: Add only widens.
func (c *chart) fromZero() { c.p.Y.Min = 0 }

// png renders the chart: data area on the left, legend column on the right, top-aligned with
// the data area (below the title).
func (c *chart) png() ([]byte, error) {
	img := vgimg.NewWith(vgimg.UseWH(chartWidth, chartHeight), vgimg.UseDPI(chartDPI))
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	// Margins keep the title and the axis label off the image edge.
	plotArea := draw.Crop(dc, vg.Points(4), -vg.Points(6), vg.Points(2), -vg.Points(6))
	if w := c.legend.Rectangle(dc).Size().X; w > 0 {
		gap := vg.Points(12)
		plotArea = draw.Crop(plotArea, 0, -(w + 2*gap), 0, 0)
		c.legend.Draw(draw.Crop(dc, chartWidth-w-gap, -gap, 0, -vg.Points(34)))
	}
	c.p.Draw(plotArea)
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("encode PNG: %w", err)
	}
	return buf.Bytes(), nil
}

// niceTicks puts five to seven labelled ticks at round values (1, 2, 2.5 or 5 times a power of ten)
// with unlabelled minor ticks between them; gonum's default often labels only two or three, which
// leaves a chart hard to read off.
type niceTicks struct{}

func (niceTicks) Ticks(min, max float64) []plot.Tick {
	if !(max > min) || math.IsInf(max-min, 0) || math.IsNaN(max-min) {
		// gonum widens a constant range before asking for ticks; label the one value if not.
		return []plot.Tick{{Value: min, Label: strconv.FormatFloat(min, 'g', 6, 64)}}
	}
	major, minor := niceStep((max - min) / 5)
	var ticks []plot.Tick
	first := math.Ceil(min/minor - 1e-9)
	for k := first; k*minor <= max+minor*1e-9; k++ {
		v := k * minor
		t := plot.Tick{Value: v}
		if q := v / major; math.Abs(q-math.Round(q)) < 1e-6 {
			v = math.Round(q) * major
			if v == 0 {
				v = 0 // no "-0"
			}
			t.Value, t.Label = v, strconv.FormatFloat(v, 'g', 6, 64)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// niceStep picks the smallest round step (1, 2, 2.5 or 5 times a power of ten) not much below raw
// (at most a quarter smaller: between five and seven labels), and the minor step that divides it.
func niceStep(raw float64) (major, minor float64) {
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []struct{ mult, div float64 }{{1, 5}, {2, 4}, {2.5, 5}, {5, 5}, {10, 5}} {
		if m.mult*pow >= 0.75*raw {
			return m.mult * pow, m.mult * pow / m.div
		}
	}
	return 10 * pow, 2 * pow
}

// vLines draws full-height vertical lines at the given x values (Iterative-SPO switch points).
// It reports no data range, so it never stretches the y axis.
type vLines struct {
	xs    []float64
	style draw.LineStyle
}

func (v vLines) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, x := range v.xs {
		px := trX(x)
		if px < c.Min.X || px > c.Max.X {
			continue
		}
		c.StrokeLine2(v.style, px, c.Min.Y, px, c.Max.Y)
	}
}

// hLine draws a full-width horizontal reference line (the 50% of an even match).
type hLine struct {
	y     float64
	style draw.LineStyle
}

func (h hLine) Plot(c draw.Canvas, p *plot.Plot) {
	_, trY := p.Transforms(&c)
	py := trY(h.y)
	if py >= c.Min.Y && py <= c.Max.Y {
		c.StrokeLine2(h.style, c.Min.X, py, c.Max.X, py)
	}
}

// band fills the area between low and high over the same x values (an interval).
func (c *chart) band(xs, low, high []float64, col color.Color) error {
	if len(xs) < 2 {
		return nil
	}
	outline := make(plotter.XYs, 0, 2*len(xs))
	for i := range xs {
		outline = append(outline, plotter.XY{X: xs[i], Y: high[i]})
	}
	for i := len(xs) - 1; i >= 0; i-- {
		outline = append(outline, plotter.XY{X: xs[i], Y: low[i]})
	}
	poly, err := plotter.NewPolygon(outline)
	if err != nil {
		return err
	}
	poly.Color = col
	poly.LineStyle.Width = 0
	c.p.Add(poly)
	return nil
}

// finite drops points a plotter would reject (NaN, ±Inf).
func finite(xys plotter.XYs) plotter.XYs {
	out := xys[:0:0]
	for _, p := range xys {
		if !math.IsNaN(p.Y) && !math.IsInf(p.Y, 0) {
			out = append(out, p)
		}
	}
	return out
}

// translucent returns col with the given alpha (premultiplied, as image/color expects).
func translucent(col color.Color, alpha uint8) color.Color {
	r, g, b, _ := col.RGBA()
	a := uint32(alpha)
	return color.RGBA{R: uint8(r >> 8 * a / 255), G: uint8(g >> 8 * a / 255), B: uint8(b >> 8 * a / 255), A: alpha}
}
