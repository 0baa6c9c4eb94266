package data

import (
	"encoding/json"
	"image"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func decodeChart(t *testing.T, p *Pair) ChartDetail {
	t.Helper()
	var d ChartDetail
	require.NoError(t, json.Unmarshal(p.Detail, &d))
	return d
}

func colorDist(img *image.RGBA, x, y int, c [3]uint8) float64 {
	p := img.Pix[img.PixOffset(x, y):]
	dr, dg, db := float64(p[0])-float64(c[0]), float64(p[1])-float64(c[1]), float64(p[2])-float64(c[2])
	return math.Sqrt(dr*dr + dg*dg + db*db)
}

// TestChartJSONValuesAreTheOnesDrawn reads the values back from the pixels: bar heights, line
// points and pie angles, in both images, against the values of the JSON.
func TestChartJSONValuesAreTheOnesDrawn(t *testing.T) {
	for _, typ := range []string{ChartBar, ChartLine, ChartPie} {
		t.Run(typ, func(t *testing.T) {
			for idx := 0; idx < 4; idx++ {
				p, orig, mod, err := RenderChartPair(idx, ChartOptions{Seed: 21, Types: []string{typ}})
				require.NoError(t, err)
				d := decodeChart(t, p)
				require.Equal(t, typ, d.Type)
				require.NotEmpty(t, d.Changed)
				for _, v := range []struct {
					img  *image.RGBA
					vals [][]float64
				}{{orig, d.Original}, {mod, d.Modified}} {
					switch typ {
					case ChartBar:
						checkBars(t, v.img, &d, v.vals)
					case ChartLine:
						checkLines(t, v.img, &d, v.vals)
					case ChartPie:
						checkPie(t, v.img, &d, v.vals[0])
					}
				}
				for _, c := range d.Changed {
					require.Equal(t, c.Before, d.Original[c.Series][c.Category])
					require.Equal(t, c.After, d.Modified[c.Series][c.Category])
					require.NotEqual(t, c.Before, c.After)
				}
			}
		})
	}
}

// axisY is where the JSON's axis puts value v.
func axisY(a *ChartAxis, v float64) float64 {
	return float64(a.Plot.Y1) - (v-a.Min)/(a.Max-a.Min)*float64(a.Plot.Y1-a.Plot.Y0)
}

func checkBars(t *testing.T, img *image.RGBA, d *ChartDetail, vals [][]float64) {
	t.Helper()
	for s, sv := range vals {
		for i, v := range sv {
			x := int(math.Round(d.OriginalMarks[s][i].X)) // bars keep their x in both charts
			// climb from the axis while the pixels have the series colour; the anti-aliased top
			// row counts by its coverage
			top := float64(d.Axis.Plot.Y1)
			for y := d.Axis.Plot.Y1 - 1; y >= 0; y-- {
				dist := colorDist(img, x, y, d.Series[s].RGB)
				if dist < 8 {
					top = float64(y)
					continue
				}
				white := colorDist(img, x, y, [3]uint8{255, 255, 255})
				cover := 1 - dist/(dist+white) // share of the row the bar covers
				top = float64(y+1) - cover
				break
			}
			require.InDelta(t, axisY(d.Axis, v), top, 0.75, "series %d category %d value %v", s, i, v)
		}
	}
}

func checkLines(t *testing.T, img *image.RGBA, d *ChartDetail, vals [][]float64) {
	t.Helper()
	n := len(vals)
	for s, sv := range vals {
		for i, v := range sv {
			m := d.OriginalMarks[s][i]
			y := axisY(d.Axis, v)
			if s == n-1 { // the last series is drawn on top: its marker is fully visible
				x, yy := int(m.X), int(y)
				require.Less(t, colorDist(img, x, yy, [3]uint8{255, 255, 255}), 40.0, "white centre of point %d", i)
				require.Less(t, colorDist(img, x+3, yy, d.Series[s].RGB), 60.0, "ring of point %d", i)
				require.Less(t, colorDist(img, x, yy-3, d.Series[s].RGB), 60.0, "ring of point %d", i)
			}
		}
	}
}

func checkPie(t *testing.T, img *image.RGBA, d *ChartDetail, vals []float64) {
	t.Helper()
	total := 0.0
	for _, v := range vals {
		total += v
	}
	const samples = 2880
	counts := make([]float64, len(vals))
	for k := 0; k < samples; k++ {
		a := 2 * math.Pi * (float64(k) + 0.5) / samples
		x := d.Pie.CX + 0.6*d.Pie.R*math.Sin(a)
		y := d.Pie.CY - 0.6*d.Pie.R*math.Cos(a)
		best, bd := -1, 30.0
		for i, s := range d.Series {
			if dist := colorDist(img, int(x), int(y), s.RGB); dist < bd {
				best, bd = i, dist
			}
		}
		if best >= 0 {
			counts[best]++
		}
	}
	for i, v := range vals {
		require.InDelta(t, v/total, counts[i]/samples, 0.012, "slice %s", d.Categories[i])
	}
}

// TestChartOnlyChangedValuesDiffer: outside the change boxes the two charts are identical.
func TestChartOnlyChangedValuesDiffer(t *testing.T) {
	for idx := 0; idx < 6; idx++ {
		p, orig, mod, err := RenderChartPair(idx, ChartOptions{Seed: 5})
		require.NoError(t, err)
		d := decodeChart(t, p)
		require.Len(t, p.Changes, len(d.Changed))
		b := orig.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if pixelDiff(orig, mod, x, y) == 0 {
					continue
				}
				inside := false
				for _, c := range p.Changes {
					inside = inside || (x >= c.Box.X0 && x < c.Box.X1 && y >= c.Box.Y0 && y < c.Box.Y1)
				}
				require.True(t, inside, "%s chart %d: pixel (%d,%d) differs outside the change boxes", d.Type, idx, x, y)
			}
		}
		changed := 0
		for _, it := range p.Items {
			if it.Changed() {
				changed++
			}
		}
		require.Equal(t, len(d.Changed), changed)
	}
}

func TestChartSameSeedSameImages(t *testing.T) {
	for idx := 0; idx < 3; idx++ {
		p1, a1, b1, err := RenderChartPair(idx, ChartOptions{Seed: 8})
		require.NoError(t, err)
		p2, a2, b2, err := RenderChartPair(idx, ChartOptions{Seed: 8})
		require.NoError(t, err)
		require.Equal(t, a1.Pix, a2.Pix)
		require.Equal(t, b1.Pix, b2.Pix)
		require.Equal(t, p1, p2)
	}
}

func TestChartBadOptions(t *testing.T) {
	cases := []struct {
		name string
		opts ChartOptions
		want string
	}{
		{"n zero", ChartOptions{}, "must be positive"},
		{"small", ChartOptions{N: 1, Width: 100, Height: 80}, "image size"},
		{"type", ChartOptions{N: 1, Types: []string{"radar"}}, "unknown chart type"},
		{"changes", ChartOptions{N: 1, MinChanges: 3, MaxChanges: 2}, "changes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := GenerateCharts(t.TempDir(), tc.opts)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
