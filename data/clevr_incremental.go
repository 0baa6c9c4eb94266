package data

import (
	"image"
	"slices"
)

// The modified scene differs from the original only in the changed objects, so most of its pixels
// are the original's. While the original is rendered, every ray (camera, shadow, reflection,
// anti-aliasing) is checked against the bounding spheres of the changed objects of both scenes;
// a pixel none of whose rays came near them is computed the same way in the modified scene, with
// the same numbers, and is copied instead of shaded again. The result is byte-identical to a full
// render (TestCLEVRIncrementalRenderIsExact) at about half the cost of the second image.

// wsphere is a watched bounding sphere.
type wsphere struct {
	c  vec3
	r2 float64
}

// watchSpheres are the bounding spheres (slightly grown) of the objects of l whose ID is in ids.
func watchSpheres(r *renderer, l *layout, ids []int) []wsphere {
	var out []wsphere
	for i, o := range l.objs {
		if slices.Contains(ids, o.ID) {
			out = append(out, wsphere{c: r.objs[i].bc, r2: r.objs[i].br2*1.0001 + 1e-9})
		}
	}
	return out
}

// note marks the pixel being computed as tainted when the ray from ro along the unit direction
// rd may meet a watched sphere.
func (r *renderer) note(ro, rd vec3) {
	if r.taint {
		return
	}
	for _, s := range r.watch {
		oc := ro.sub(s.c)
		c := oc.dot(oc) - s.r2
		if c <= 0 { // starts inside
			r.taint = true
			return
		}
		if b := oc.dot(rd); b < 0 && b*b-c >= 0 {
			r.taint = true
			return
		}
	}
}

// memo is what a render leaves for the render of the modified scene.
type memo struct {
	img     *image.RGBA
	cols    []vec3 // centre-sample colours
	shadow  []bool // centre sample in the key light's shadow
	edge    []bool // anti-aliased
	clean   []bool // the centre sample's rays touched no watched sphere
	aaClean []bool // nor did the extra samples' rays
}

// renderFrom shades the image from the primary hits of primaryIDs; with from set (the memo of
// the original, rendered with the changed objects watched) it reuses every clean pixel.
func (r *renderer) renderFrom(ids []int8, hits []hit, from *memo) (*image.RGBA, *memo) {
	w, h := r.cam.w, r.cam.h
	if r.cand == nil {
		r.cand = r.screenCandidates()
	}
	if r.dirs == nil {
		r.dirs = r.cam.centreRays()
	}
	m := &memo{
		img:  image.NewRGBA(image.Rect(0, 0, w, h)),
		cols: make([]vec3, w*h), shadow: make([]bool, w*h),
		clean: make([]bool, w*h), aaClean: make([]bool, w*h),
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*w + x
			if from != nil && from.clean[i] {
				m.cols[i], m.shadow[i] = from.cols[i], from.shadow[i]
				continue
			}
			rd := r.dirs[i]
			r.taint = false
			r.note(r.cam.pos, rd)
			m.cols[i], m.shadow[i] = r.shade(r.cam.pos, rd, hits[i], 0)
			m.clean[i] = !r.taint
		}
	}
	pix := m.img.Pix
	m.edge = edgeMap(ids, m.shadow, w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*w + x
			c := m.cols[i]
			if m.edge[i] {
				if from != nil && from.clean[i] && from.edge[i] && from.aaClean[i] {
					copy(pix[4*i:4*i+4], from.img.Pix[4*i:4*i+4])
					continue
				}
				r.taint = false
				for _, o := range aaOffsets {
					rd := r.cam.ray(float64(x)+o[0], float64(y)+o[1])
					r.note(r.cam.pos, rd)
					sc, _ := r.shade(r.cam.pos, rd, r.traceSome(r.cam.pos, rd, r.cand[i]), 0)
					c = c.add(sc)
				}
				m.aaClean[i] = !r.taint
				c = c.scale(1.0 / 5)
			}
			pix[4*i] = toSRGB(c.X)
			pix[4*i+1] = toSRGB(c.Y)
			pix[4*i+2] = toSRGB(c.Z)
			pix[4*i+3] = 255
		}
	}
	return m.img, m
}
