package data

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
)

// Automatic local edits that turn one photo into a pair. Each edit changes the pixels of its box
// and nothing else, and says in plain words what happened there.

// Edit kinds.
const (
	EditRecolor = "recolor" // hue of an elliptical region rotated
	EditMirror  = "mirror"  // a patch flipped left to right
	EditSwap    = "swap"    // two patches exchanged
	EditRemove  = "remove"  // a patch filled in from its surroundings
	EditPaste   = "paste"   // a copy of one patch pasted over another place
)

// EditKinds lists every automatic edit.
var EditKinds = []string{EditRecolor, EditMirror, EditSwap, EditRemove, EditPaste}

// EditRecord is one automatic edit in the Detail of an edit pair.
type EditRecord struct {
	Kind string `json:"kind"`
	Box  Box    `json:"box"`            // pixels changed
	From *Box   `json:"from,omitempty"` // the other patch of a swap or the source of a paste
	Hue  int    `json:"hue_shift,omitempty"`
}

// applyEdit performs one edit of the given kind on img in place and returns its record, items
// and changes.
func applyEdit(rng *rand.Rand, img *image.RGBA, kind string) (EditRecord, []Item, []Change, error) {
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	a := pickRegion(rng, img, nil)
	if a == (Box{}) {
		return EditRecord{}, nil, nil, fmt.Errorf("image %dx%d too small for an edit", w, h)
	}
	rec := EditRecord{Kind: kind, Box: a}
	where := regionWord(a, w, h)
	before := fmt.Sprintf("region %s, mostly %s", where, colorName(meanColor(img, a)))
	switch kind {
	case EditRecolor:
		rec.Hue = 90 + rng.IntN(181)
		recolorEllipse(img, a, float64(rec.Hue))
	case EditMirror:
		mirrorPatch(img, a)
	case EditRemove:
		fillFromBorder(img, a)
	case EditSwap, EditPaste:
		b := pickRegion(rng, img, &a)
		if b == (Box{}) {
			return rec, nil, nil, fmt.Errorf("image %dx%d too small for two separate patches", w, h)
		}
		rec.From = &b
		if kind == EditSwap {
			swapPatches(img, a, b)
		} else {
			copyPatch(img, b, a)
		}
	default:
		return rec, nil, nil, fmt.Errorf("unknown edit %q (recolor, mirror, swap, remove, paste)", kind)
	}
	after := fmt.Sprintf("region %s, mostly %s", where, colorName(meanColor(img, a)))
	var items []Item
	var changes []Change
	switch kind {
	case EditRecolor:
		items = []Item{{before, after + " (recolored)"}}
	case EditMirror:
		items = []Item{{before, after + " (mirrored)"}}
	case EditRemove:
		items = []Item{{before, after + " (content removed)"}}
	case EditPaste:
		items = []Item{{before, fmt.Sprintf("%s (copy of the region %s)", after, regionWord(*rec.From, w, h))}}
	case EditSwap:
		bw := regionWord(*rec.From, w, h)
		// the second patch was described after the swap: its old content is now at a
		items = []Item{
			{before, fmt.Sprintf("%s (swapped with the region %s)", after, bw)},
			{fmt.Sprintf("region %s, mostly %s", bw, colorName(meanColor(img, a))),
				fmt.Sprintf("region %s, mostly %s (swapped with the region %s)", bw, colorName(meanColor(img, *rec.From)), where)},
		}
		changes = append(changes, Change{Kind: kind, Before: items[1].Original, After: items[1].Modified, Box: *rec.From})
	}
	changes = append([]Change{{Kind: kind, Before: items[0].Original, After: items[0].Modified, Box: a}}, changes...)
	return rec, items, changes, nil
}

// pickRegion chooses a patch of 15-30% of the shorter side; of eight candidates it takes the most
// textured one (an edit on a flat sky is invisible). With avoid set, the patch must not overlap it.
func pickRegion(rng *rand.Rand, img *image.RGBA, avoid *Box) Box {
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	s := float64(min(w, h))
	best, bestVar := Box{}, -1.0
	for try := 0; try < 40 && (try < 8 || best == (Box{})); try++ {
		var bw, bh int
		if avoid != nil { // swaps and pastes need two patches of one size
			bw, bh = avoid.X1-avoid.X0, avoid.Y1-avoid.Y0
		} else {
			side := s * (0.15 + 0.15*rng.Float64())
			asp := 0.7 + 0.6*rng.Float64()
			bw, bh = max(4, int(side*asp)), max(4, int(side/asp))
		}
		if w-bw-1 <= 1 || h-bh-1 <= 1 {
			continue
		}
		x0, y0 := 1+rng.IntN(w-bw-1), 1+rng.IntN(h-bh-1)
		b := Box{X0: x0, Y0: y0, X1: x0 + bw, Y1: y0 + bh}
		if avoid != nil && b.X0 < avoid.X1 && avoid.X0 < b.X1 && b.Y0 < avoid.Y1 && avoid.Y0 < b.Y1 {
			continue
		}
		if v := lumaVariance(img, b); v > bestVar {
			best, bestVar = b, v
		}
	}
	return best
}

func lumaVariance(img *image.RGBA, b Box) float64 {
	var s, s2, n float64
	for y := b.Y0; y < b.Y1; y += 2 {
		for x := b.X0; x < b.X1; x += 2 {
			p := img.Pix[img.PixOffset(x, y):]
			l := 0.299*float64(p[0]) + 0.587*float64(p[1]) + 0.114*float64(p[2])
			s, s2, n = s+l, s2+l*l, n+1
		}
	}
	if n == 0 {
		return 0
	}
	m := s / n
	return s2/n - m*m
}

// recolorEllipse rotates the hue inside the ellipse inscribed in b.
func recolorEllipse(img *image.RGBA, b Box, deg float64) {
	cx, cy := float64(b.X0+b.X1)/2, float64(b.Y0+b.Y1)/2
	rx, ry := float64(b.X1-b.X0)/2, float64(b.Y1-b.Y0)/2
	for y := b.Y0; y < b.Y1; y++ {
		for x := b.X0; x < b.X1; x++ {
			dx, dy := (float64(x)+0.5-cx)/rx, (float64(y)+0.5-cy)/ry
			if dx*dx+dy*dy > 1 {
				continue
			}
			p := img.Pix[img.PixOffset(x, y):]
			p[0], p[1], p[2] = rotateHue(p[0], p[1], p[2], deg)
		}
	}
}

// rotateHue turns a colour about the gray axis (keeps luminance roughly), and lifts the
// saturation of dull colours so that the change is visible.
func rotateHue(r, g, b uint8, deg float64) (uint8, uint8, uint8) {
	h, s, l := rgbToHSL(float64(r)/255, float64(g)/255, float64(b)/255)
	h = math.Mod(h+deg, 360)
	s = math.Max(s, 0.45)
	rr, gg, bb := hslToRGB(h, s, l)
	return uint8(rr*255 + 0.5), uint8(gg*255 + 0.5), uint8(bb*255 + 0.5)
}

func mirrorPatch(img *image.RGBA, b Box) {
	for y := b.Y0; y < b.Y1; y++ {
		for i, j := b.X0, b.X1-1; i < j; i, j = i+1, j-1 {
			p, q := img.Pix[img.PixOffset(i, y):][:4], img.Pix[img.PixOffset(j, y):][:4]
			var t [4]uint8
			copy(t[:], p)
			copy(p, q)
			copy(q, t[:])
		}
	}
}

func swapPatches(img *image.RGBA, a, b Box) {
	for y := 0; y < a.Y1-a.Y0; y++ {
		n := 4 * (a.X1 - a.X0)
		p := img.Pix[img.PixOffset(a.X0, a.Y0+y):][:n]
		q := img.Pix[img.PixOffset(b.X0, b.Y0+y):][:n]
		t := make([]uint8, n)
		copy(t, p)
		copy(p, q)
		copy(q, t)
	}
}

// copyPatch copies the pixels of from onto to (same size, not overlapping).
func copyPatch(img *image.RGBA, from, to Box) {
	n := 4 * (from.X1 - from.X0)
	for y := 0; y < from.Y1-from.Y0; y++ {
		copy(img.Pix[img.PixOffset(to.X0, to.Y0+y):][:n], img.Pix[img.PixOffset(from.X0, from.Y0+y):][:n])
	}
}

// fillFromBorder replaces the patch by a smooth blend of the pixels just outside it (each pixel
// a distance-weighted mean of the four border pixels in its row and column), the simplest
// inpainting that leaves no trace of what was there.
func fillFromBorder(img *image.RGBA, b Box) {
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	at := func(x, y int) []uint8 {
		x, y = min(max(x, 0), w-1), min(max(y, 0), h-1)
		return img.Pix[img.PixOffset(x, y):][:4]
	}
	src := image.NewRGBA(img.Bounds())
	copy(src.Pix, img.Pix)
	srcAt := func(x, y int) []uint8 {
		x, y = min(max(x, 0), w-1), min(max(y, 0), h-1)
		return src.Pix[src.PixOffset(x, y):][:4]
	}
	for y := b.Y0; y < b.Y1; y++ {
		for x := b.X0; x < b.X1; x++ {
			dl, dr := float64(x-b.X0+1), float64(b.X1-x)
			dt, db := float64(y-b.Y0+1), float64(b.Y1-y)
			ws := [4]float64{1 / dl, 1 / dr, 1 / dt, 1 / db}
			ps := [4][]uint8{srcAt(b.X0-1, y), srcAt(b.X1, y), srcAt(x, b.Y0-1), srcAt(x, b.Y1)}
			tw := ws[0] + ws[1] + ws[2] + ws[3]
			p := at(x, y)
			for c := 0; c < 3; c++ {
				v := 0.0
				for k := range ps {
					v += ws[k] * float64(ps[k][c])
				}
				p[c] = uint8(v/tw + 0.5)
			}
		}
	}
}

// regionWord names the ninth of the image a box's centre is in: "near the top-left".
func regionWord(b Box, w, h int) string {
	cx, cy := float64(b.X0+b.X1)/2, float64(b.Y0+b.Y1)/2
	col := []string{"left", "", "right"}[min(2, int(3*cx/float64(w)))]
	row := []string{"top", "", "bottom"}[min(2, int(3*cy/float64(h)))]
	switch {
	case row != "" && col != "":
		return "near the " + row + "-" + col
	case row != "":
		return "near the " + row
	case col != "":
		return "near the " + col
	}
	return "in the center"
}

func meanColor(img *image.RGBA, b Box) [3]float64 {
	var s [3]float64
	n := 0.0
	for y := b.Y0; y < b.Y1; y++ {
		for x := b.X0; x < b.X1; x++ {
			p := img.Pix[img.PixOffset(x, y):]
			s[0], s[1], s[2] = s[0]+float64(p[0]), s[1]+float64(p[1]), s[2]+float64(p[2])
			n++
		}
	}
	if n > 0 {
		s[0], s[1], s[2] = s[0]/n, s[1]/n, s[2]/n
	}
	return s
}

// colorName is the plain word for a mean colour: white, black, gray, brown, or a hue name.
func colorName(c [3]float64) string {
	h, s, l := rgbToHSL(c[0]/255, c[1]/255, c[2]/255)
	switch {
	case l > 0.88:
		return "white"
	case l < 0.12:
		return "black"
	case s < 0.15:
		return "gray"
	}
	switch {
	case h < 15 || h >= 345:
		return "red"
	case h < 45:
		if l < 0.45 {
			return "brown"
		}
		return "orange"
	case h < 70:
		return "yellow"
	case h < 165:
		return "green"
	case h < 200:
		return "cyan"
	case h < 260:
		return "blue"
	case h < 300:
		return "purple"
	}
	return "pink"
}

func rgbToHSL(r, g, b float64) (h, s, l float64) {
	mx, mn := math.Max(r, math.Max(g, b)), math.Min(r, math.Min(g, b))
	l = (mx + mn) / 2
	d := mx - mn
	if d == 0 {
		return 0, 0, l
	}
	if l > 0.5 {
		s = d / (2 - mx - mn)
	} else {
		s = d / (mx + mn)
	}
	switch mx {
	case r:
		h = math.Mod((g-b)/d+6, 6)
	case g:
		h = (b-r)/d + 2
	default:
		h = (r-g)/d + 4
	}
	return h * 60, s, l
}

func hslToRGB(h, s, l float64) (float64, float64, float64) {
	c := (1 - math.Abs(2*l-1)) * s
	x := c * (1 - math.Abs(math.Mod(h/60, 2)-1))
	m := l - c/2
	var r, g, b float64
	switch {
	case h < 60:
		r, g, b = c, x, 0
	case h < 120:
		r, g, b = x, c, 0
	case h < 180:
		r, g, b = 0, c, x
	case h < 240:
		r, g, b = 0, x, c
	case h < 300:
		r, g, b = x, 0, c
	default:
		r, g, b = c, 0, x
	}
	return r + m, g + m, b + m
}
