package data

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"

	"golang.org/x/image/font"
)

var (
	inkText = color.RGBA{40, 40, 40, 255}
	inkGrid = color.RGBA{228, 228, 228, 255}
	inkAxis = color.RGBA{90, 90, 90, 255}
	white   = color.RGBA{255, 255, 255, 255}
)

// chartGeo is the layout shared by the original and the modified chart, so that only the
// replaced values can move.
type chartGeo struct {
	w, h                   int
	px0, py0, px1, py1     float64 // plot area (bar, line)
	axisMin, axisMax, step float64
	cx, cy, r              float64 // pie
}

// chartLayout fixes the plot area and a value axis that fits the data of both charts.
func chartLayout(d *ChartDetail, w, h int) (chartGeo, error) {
	g := chartGeo{w: w, h: h}
	top := 64.0
	if d.Type == ChartPie {
		g.cx = float64(w) * 0.38
		g.cy = (top + float64(h) - 12) / 2
		g.r = math.Min(float64(w)*0.26, (float64(h)-top-12)/2-18)
		if g.r < 30 {
			return g, fmt.Errorf("chart: %dx%d leaves no room for the pie", w, h)
		}
		d.Pie = &ChartPieGeom{CX: round3(g.cx), CY: round3(g.cy), R: round3(g.r)}
		return g, nil
	}
	hi := 0.0
	for _, vals := range [][][]float64{d.Original, d.Modified} {
		for _, s := range vals {
			for _, v := range s {
				hi = math.Max(hi, v)
			}
		}
	}
	g.step = niceStep(hi / 5)
	g.axisMax = math.Ceil(hi*1.1/g.step) * g.step
	g.px0, g.py0 = 64, top
	g.px1, g.py1 = float64(w)-16, float64(h)-46
	d.Axis = &ChartAxis{Min: g.axisMin, Max: g.axisMax, Step: g.step,
		Plot: Box{X0: int(g.px0), Y0: int(g.py0), X1: int(g.px1), Y1: int(g.py1)}}
	return g, nil
}

// niceStep rounds a raw tick step up to 1, 2, 2.5 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

func (g *chartGeo) y(v float64) float64 {
	return g.py1 - (v-g.axisMin)/(g.axisMax-g.axisMin)*(g.py1-g.py0)
}

// chartFaces are the fonts of a chart. Faces are not safe for concurrent use, so each pair (drawn
// on one goroutine) builds its own and both of its charts share them.
func chartFaces() (map[string]font.Face, error) {
	faces := map[string]font.Face{}
	for name, spec := range map[string]struct {
		size float64
		bold bool
	}{"title": {17, true}, "label": {13, false}, "tick": {11, false}, "value": {11, true}} {
		f, err := newFace(spec.size, spec.bold)
		if err != nil {
			return nil, err
		}
		faces[name] = f
	}
	return faces, nil
}

// drawChart renders one chart with the given values and says where each value was drawn.
func drawChart(d *ChartDetail, values [][]float64, g chartGeo, faces map[string]font.Face) (*image.RGBA, [][]ChartMark, error) {
	img := image.NewRGBA(image.Rect(0, 0, g.w, g.h))
	draw.Draw(img, img.Bounds(), image.NewUniform(white), image.Point{}, draw.Src)
	drawTextCentered(img, faces["title"], d.Title, g.w/2, 24, inkText)
	marks := make([][]ChartMark, len(values))
	for s := range marks {
		marks[s] = make([]ChartMark, len(d.Categories))
	}
	if d.Type == ChartPie {
		drawPie(img, d, values[0], g, faces, marks[0])
		return img, marks, nil
	}
	drawAxes(img, d, g, faces)
	drawLegendRow(img, d, g, faces["label"])
	slot := (g.px1 - g.px0) / float64(len(d.Categories))
	for s, vals := range values {
		c := rgba(d.Series[s].RGB)
		switch d.Type {
		case ChartBar:
			group := slot * 0.72
			bw := group / float64(len(values))
			for i, v := range vals {
				x0 := g.px0 + slot*float64(i) + (slot-group)/2 + bw*float64(s)
				r := fillRect(img, x0+1, g.y(v), x0+bw-1, g.py1, c)
				lr := drawTextCentered(img, faces["value"], formatValue(v), int(math.Round(x0+bw/2)), int(math.Floor(g.y(v)))-4, inkText)
				marks[s][i] = ChartMark{X: round3(x0 + bw/2), Y: round3(g.y(v)), Box: toBox(r.Union(lr))}
			}
		case ChartLine:
			p := make([]pt, len(vals))
			for i, v := range vals {
				p[i] = pt{g.px0 + slot*(float64(i)+0.5), g.y(v)}
			}
			seg := make([]image.Rectangle, len(vals)) // seg[i]: segment from point i to i+1
			for i := 0; i+1 < len(p); i++ {
				seg[i] = strokeLine(img, p[i], p[i+1], 2.5, c)
			}
			for i, v := range vals {
				r := fillCircle(img, p[i].X, p[i].Y, 4, c)
				r = r.Union(fillCircle(img, p[i].X, p[i].Y, 1.8, white))
				r = r.Union(drawTextCentered(img, faces["value"], formatValue(v), int(math.Round(p[i].X)), int(math.Floor(p[i].Y))-8, inkText))
				if i > 0 {
					r = r.Union(seg[i-1])
				}
				r = r.Union(seg[i])
				marks[s][i] = ChartMark{X: round3(p[i].X), Y: round3(p[i].Y), Box: toBox(r.Inset(-1).Intersect(img.Bounds()))}
			}
		}
	}
	return img, marks, nil
}

// drawAxes draws grid lines, tick labels, the axes, category labels and axis titles.
func drawAxes(img *image.RGBA, d *ChartDetail, g chartGeo, faces map[string]font.Face) {
	x0, x1, y1 := int(g.px0), int(g.px1), int(g.py1)
	for v := g.axisMin; v <= g.axisMax+g.step/1000; v += g.step {
		y := int(math.Round(g.y(v)))
		if v > g.axisMin {
			hline(img, x0, x1, y, inkGrid)
		}
		s := formatValue(math.Round(v*1000) / 1000)
		drawText(img, faces["tick"], s, x0-6-textWidth(faces["tick"], s), y+4, inkText)
	}
	hline(img, x0, x1, y1, inkAxis)
	vline(img, x0, int(g.py0), y1+1, inkAxis)
	slot := (g.px1 - g.px0) / float64(len(d.Categories))
	for i, cat := range d.Categories {
		drawTextCentered(img, faces["tick"], cat, int(g.px0+slot*(float64(i)+0.5)), y1+15, inkText)
	}
	drawTextCentered(img, faces["label"], d.XLabel, (x0+x1)/2, g.h-10, inkText)
	drawTextVertical(img, faces["label"], d.YLabel, 10, int((g.py0+g.py1)/2), inkText)
}

// drawLegendRow puts the series names in one centred row under the title.
func drawLegendRow(img *image.RGBA, d *ChartDetail, g chartGeo, face font.Face) {
	total := 0
	for _, s := range d.Series {
		total += 14 + textWidth(face, s.Name) + 18
	}
	x := (g.w - total) / 2
	for _, s := range d.Series {
		fillRect(img, float64(x), 38, float64(x+10), 48, rgba(s.RGB))
		drawText(img, face, s.Name, x+14, 48, inkText)
		x += 14 + textWidth(face, s.Name) + 18
	}
}

// drawPie draws the slices clockwise from 12 o'clock, their values outside the rim and a legend.
func drawPie(img *image.RGBA, d *ChartDetail, vals []float64, g chartGeo, faces map[string]font.Face, marks []ChartMark) {
	total := 0.0
	for _, v := range vals {
		total += v
	}
	a := 0.0
	for i, v := range vals {
		a1 := a + 2*math.Pi*v/total
		r := fillSector(img, g.cx, g.cy, g.r, a, a1, rgba(d.Series[i].RGB))
		mid := (a + a1) / 2
		lx, ly := g.cx+(g.r+14)*math.Sin(mid), g.cy-(g.r+14)*math.Cos(mid)
		lr := drawTextCentered(img, faces["value"], formatValue(v), int(math.Round(lx)), int(math.Round(ly))+4, inkText)
		marks[i] = ChartMark{StartDeg: round3(a * 180 / math.Pi), EndDeg: round3(a1 * 180 / math.Pi), Box: toBox(r.Union(lr))}
		a = a1
	}
	// thin white borders between slices, as chart tools draw them
	a = 0
	for i, v := range vals {
		end := pt{g.cx + g.r*math.Sin(a), g.cy - g.r*math.Cos(a)}
		r := strokeLine(img, pt{g.cx, g.cy}, end, 1.5, white)
		marks[i].Box = toBox(toRect(marks[i].Box).Union(r))
		if i > 0 {
			marks[i-1].Box = toBox(toRect(marks[i-1].Box).Union(r))
		}
		a += 2 * math.Pi * v / total
	}
	x, y := int(g.cx+g.r+40), int(g.cy)-len(vals)*10
	for i, cat := range d.Categories {
		fillRect(img, float64(x), float64(y+i*20), float64(x+12), float64(y+i*20+12), rgba(d.Series[i].RGB))
		drawText(img, faces["label"], cat, x+18, y+i*20+11, inkText)
	}
}

func rgba(c [3]uint8) color.RGBA { return color.RGBA{c[0], c[1], c[2], 255} }

func toRect(b Box) image.Rectangle { return image.Rect(b.X0, b.Y0, b.X1, b.Y1) }
