package data

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/goregular"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Text is drawn with the Go fonts (real TrueType outlines shipped in golang.org/x/image), rasterised
// with anti-aliasing by the opentype package. Faces are not safe for concurrent use, so each call
// site takes a fresh face from a parsed font shared by all goroutines.

var (
	fontOnce              sync.Once
	fontRegular, fontBold *opentype.Font
	fontErr               error
)

func parsedFonts() (*opentype.Font, *opentype.Font, error) {
	fontOnce.Do(func() {
		if fontRegular, fontErr = opentype.Parse(goregular.TTF); fontErr != nil {
			return
		}
		fontBold, fontErr = opentype.Parse(gobold.TTF)
	})
	return fontRegular, fontBold, fontErr
}

// newFace returns a face of the Go font at size pixels.
func newFace(size float64, bold bool) (font.Face, error) {
	reg, b, err := parsedFonts()
	if err != nil {
		return nil, fmt.Errorf("go font: %w", err)
	}
	f := reg
	if bold {
		f = b
	}
	return opentype.NewFace(f, &opentype.FaceOptions{Size: size, DPI: 72, Hinting: font.HintingNone})
}

// textBox is where drawText put a string: the pixel rectangle its ink may cover.
func textBox(face font.Face, s string, x, y int) image.Rectangle {
	b, _ := font.BoundString(face, s)
	r := image.Rect(b.Min.X.Floor(), b.Min.Y.Floor(), b.Max.X.Ceil(), b.Max.Y.Ceil())
	return r.Add(image.Pt(x, y)).Inset(-1)
}

// textWidth is the advance width of s in pixels.
func textWidth(face font.Face, s string) int { return font.MeasureString(face, s).Ceil() }

// drawText draws s with its baseline starting at (x, y) and returns the rectangle it covers.
func drawText(dst draw.Image, face font.Face, s string, x, y int, c color.Color) image.Rectangle {
	d := font.Drawer{Dst: dst, Src: image.NewUniform(c), Face: face, Dot: fixed.P(x, y)}
	d.DrawString(s)
	return textBox(face, s, x, y).Intersect(dst.Bounds())
}

// drawTextCentered centres s horizontally on cx with its baseline at y.
func drawTextCentered(dst draw.Image, face font.Face, s string, cx, y int, c color.Color) image.Rectangle {
	return drawText(dst, face, s, cx-textWidth(face, s)/2, y, c)
}

// drawTextVertical draws s rotated a quarter turn counter-clockwise, centred on (cx, cy), as a y
// axis label is.
func drawTextVertical(dst draw.Image, face font.Face, s string, cx, cy int, c color.Color) image.Rectangle {
	m := face.Metrics()
	w, h := textWidth(face, s)+2, (m.Ascent+m.Descent).Ceil()+2
	tmp := image.NewAlpha(image.Rect(0, 0, w, h))
	d := font.Drawer{Dst: tmp, Src: image.Opaque, Face: face, Dot: fixed.P(1, m.Ascent.Ceil()+1)}
	d.DrawString(s)
	rot := image.NewAlpha(image.Rect(0, 0, h, w))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			rot.SetAlpha(y, w-1-x, tmp.AlphaAt(x, y))
		}
	}
	r := image.Rect(cx-h/2, cy-w/2, cx-h/2+h, cy-w/2+w)
	draw.DrawMask(dst, r, image.NewUniform(c), image.Point{}, rot, image.Point{}, draw.Over)
	return r.Intersect(dst.Bounds())
}
