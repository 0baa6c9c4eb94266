package data

import (
	"image"
	"sort"
)

// diffRegions finds where two images of one size differ: pixels whose largest channel difference
// exceeds threshold are marked on a grid of 16x16-pixel cells, and each 8-connected group of marked
// cells gives the tight box of its marked pixels. Groups of fewer than minPixels marked pixels are
// compression or resampling noise and dropped; more than six groups are merged into one box.
func diffRegions(a, b *image.RGBA, threshold, minPixels int) []Box {
	w, h := a.Bounds().Dx(), a.Bounds().Dy()
	const cell = 16
	gw, gh := (w+cell-1)/cell, (h+cell-1)/cell
	boxes := make([]Box, gw*gh) // tight box of differing pixels per cell
	marked := make([]bool, gw*gh)
	counts := make([]int, gw*gh)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p, q := a.Pix[a.PixOffset(x, y):], b.Pix[b.PixOffset(x, y):]
			d := 0
			for c := 0; c < 3; c++ {
				d = max(d, absInt(int(p[c])-int(q[c])))
			}
			if d <= threshold {
				continue
			}
			i := (y/cell)*gw + x/cell
			counts[i]++
			px := Box{X0: x, Y0: y, X1: x + 1, Y1: y + 1}
			if marked[i] {
				boxes[i] = unionBox(boxes[i], px)
			} else {
				boxes[i], marked[i] = px, true
			}
		}
	}
	seen := make([]bool, gw*gh)
	var out []Box
	for start := range marked {
		if !marked[start] || seen[start] {
			continue
		}
		var box Box
		n := 0
		stack := []int{start}
		seen[start] = true
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			box = unionBox(box, boxes[i])
			n += counts[i]
			cx, cy := i%gw, i/gw
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					nx, ny := cx+dx, cy+dy
					if nx < 0 || ny < 0 || nx >= gw || ny >= gh {
						continue
					}
					j := ny*gw + nx
					if marked[j] && !seen[j] {
						seen[j] = true
						stack = append(stack, j)
					}
				}
			}
		}
		if n >= minPixels {
			out = append(out, box)
		}
	}
	if len(out) > 6 {
		all := out[0]
		for _, b := range out[1:] {
			all = unionBox(all, b)
		}
		return []Box{all}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Y0 != out[j].Y0 {
			return out[i].Y0 < out[j].Y0
		}
		return out[i].X0 < out[j].X0
	})
	return out
}

func absInt(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
