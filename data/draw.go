package data

import (
	"image"
	"image/color"
	"image/draw"
	"math"

	"golang.org/x/image/vector"
)

// Anti-aliased filled shapes for charts, rasterised with golang.org/x/image/vector over the
// bounding box of each shape only.

type pt struct{ X, Y float64 }

// fillPolygon fills a closed polygon with c and returns the pixels it may have touched.
func fillPolygon(dst *image.RGBA, pts []pt, c color.RGBA) image.Rectangle {
	if len(pts) < 3 {
		return image.Rectangle{}
	}
	x0, y0, x1, y1 := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range pts {
		x0, y0 = math.Min(x0, p.X), math.Min(y0, p.Y)
		x1, y1 = math.Max(x1, p.X), math.Max(y1, p.Y)
	}
	r := image.Rect(int(math.Floor(x0)), int(math.Floor(y0)), int(math.Ceil(x1)), int(math.Ceil(y1))).Intersect(dst.Bounds())
	if r.Empty() {
		return r
	}
	var z vector.Rasterizer
	z.Reset(r.Dx(), r.Dy())
	ox, oy := float64(r.Min.X), float64(r.Min.Y)
	z.MoveTo(float32(pts[0].X-ox), float32(pts[0].Y-oy))
	for _, p := range pts[1:] {
		z.LineTo(float32(p.X-ox), float32(p.Y-oy))
	}
	z.ClosePath()
	z.Draw(dst, r, image.NewUniform(c), image.Point{})
	return r
}

func fillRect(dst *image.RGBA, x0, y0, x1, y1 float64, c color.RGBA) image.Rectangle {
	return fillPolygon(dst, []pt{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}}, c)
}

// fillCircle fills a disc of radius rad around (cx, cy).
func fillCircle(dst *image.RGBA, cx, cy, rad float64, c color.RGBA) image.Rectangle {
	const n = 32
	pts := make([]pt, n)
	for i := range pts {
		a := 2 * math.Pi * float64(i) / n
		pts[i] = pt{cx + rad*math.Cos(a), cy + rad*math.Sin(a)}
	}
	return fillPolygon(dst, pts, c)
}

// strokeLine draws a segment of width lw with round ends.
func strokeLine(dst *image.RGBA, a, b pt, lw float64, c color.RGBA) image.Rectangle {
	dx, dy := b.X-a.X, b.Y-a.Y
	l := math.Hypot(dx, dy)
	if l == 0 {
		return fillCircle(dst, a.X, a.Y, lw/2, c)
	}
	nx, ny := -dy/l*lw/2, dx/l*lw/2
	r := fillPolygon(dst, []pt{{a.X + nx, a.Y + ny}, {b.X + nx, b.Y + ny}, {b.X - nx, b.Y - ny}, {a.X - nx, a.Y - ny}}, c)
	r = r.Union(fillCircle(dst, a.X, a.Y, lw/2, c))
	return r.Union(fillCircle(dst, b.X, b.Y, lw/2, c))
}

// fillSector fills a pie slice from angle a0 to a1 (radians, clockwise from 12 o'clock).
func fillSector(dst *image.RGBA, cx, cy, rad, a0, a1 float64, c color.RGBA) image.Rectangle {
	pts := []pt{{cx, cy}}
	steps := max(2, int(math.Ceil((a1-a0)/(math.Pi/90))))
	for i := 0; i <= steps; i++ {
		a := a0 + (a1-a0)*float64(i)/float64(steps)
		pts = append(pts, pt{cx + rad*math.Sin(a), cy - rad*math.Cos(a)})
	}
	return fillPolygon(dst, pts, c)
}

// hline and vline draw crisp one-pixel lines.
func hline(dst *image.RGBA, x0, x1, y int, c color.RGBA) {
	draw.Draw(dst, image.Rect(x0, y, x1, y+1), image.NewUniform(c), image.Point{}, draw.Src)
}

func vline(dst *image.RGBA, x, y0, y1 int, c color.RGBA) {
	draw.Draw(dst, image.Rect(x, y0, x+1, y1), image.NewUniform(c), image.Point{}, draw.Src)
}

func toBox(r image.Rectangle) Box { return Box{X0: r.Min.X, Y0: r.Min.Y, X1: r.Max.X, Y1: r.Max.Y} }
