package data

import (
	"image"
	"math"
)

// The CLEVR renderer is a small ray tracer: one primary ray per pixel centre fills an object-id
// buffer (used for the visibility rule and the change boxes), shading adds a key light with shadow
// rays, two unshadowed fill/back lights, Blinn-Phong highlights and, for metal, one reflection
// bounce; pixels on an id or shadow edge get four more samples (adaptive anti-aliasing), which keeps
// the cost near one ray per pixel while edges look smooth.

const (
	shapeCube = iota
	shapeSphere
	shapeCylinder
)

const (
	idGround = -1
	idSky    = -2
	rayEps   = 1e-6
)

// robj is one object prepared for ray tracing.
type robj struct {
	shape    int
	c        vec3    // centre (z = half height)
	r        float64 // sphere/cylinder radius, cube half edge
	cos, sin float64 // rotation about z (cubes only)
	bc       vec3    // bounding sphere centre
	br2      float64 // bounding sphere radius squared
	albedo   vec3    // linear RGB
	metal    bool
}

type light struct {
	dir       vec3 // towards the light, unit
	intensity float64
	shadows   bool
}

type camera struct {
	pos, fwd, right, up vec3
	tanX, tanY          float64
	w, h                int
}

func newCamera(pos, lookAt vec3, hfovDeg float64, w, h int) camera {
	fwd := lookAt.sub(pos).norm()
	right := fwd.cross(vec3{0, 0, 1}).norm()
	up := right.cross(fwd)
	tx := math.Tan(hfovDeg * math.Pi / 360)
	return camera{pos: pos, fwd: fwd, right: right, up: up, tanX: tx, tanY: tx * float64(h) / float64(w), w: w, h: h}
}

// ray returns the unit direction through image point (px, py), in pixels from the top-left corner.
func (c *camera) ray(px, py float64) vec3 {
	x := (2*px/float64(c.w) - 1) * c.tanX
	y := (1 - 2*py/float64(c.h)) * c.tanY
	return c.fwd.add(c.right.scale(x)).add(c.up.scale(y)).norm()
}

// project maps a world point to pixel coordinates and depth along the view axis.
func (c *camera) project(p vec3) (px, py, depth float64) {
	d := p.sub(c.pos)
	depth = d.dot(c.fwd)
	x := d.dot(c.right) / (depth * c.tanX)
	y := d.dot(c.up) / (depth * c.tanY)
	return (x + 1) / 2 * float64(c.w), (1 - y) / 2 * float64(c.h), depth
}

// intersect returns the nearest hit distance t in (rayEps, tmax) and the unit normal there.
func (o *robj) intersect(ro, rd vec3, tmax float64) (float64, vec3, bool) {
	oc := ro.sub(o.bc)
	b := oc.dot(rd)
	c := oc.dot(oc) - o.br2
	disc := b*b - c
	if disc < 0 {
		return 0, vec3{}, false
	}
	sq := math.Sqrt(disc)
	if -b+sq < rayEps || -b-sq > tmax {
		return 0, vec3{}, false
	}
	switch o.shape {
	case shapeSphere:
		t := -b - sq
		if t < rayEps {
			t = -b + sq
		}
		if t >= tmax {
			return 0, vec3{}, false
		}
		return t, ro.madd(rd, t).sub(o.c).scale(1 / o.r), true
	case shapeCube:
		return o.hitCube(ro, rd, tmax)
	default:
		return o.hitCylinder(ro, rd, tmax)
	}
}

func (o *robj) hitCube(ro, rd vec3, tmax float64) (float64, vec3, bool) {
	p := ro.sub(o.c)
	// into the cube's frame (rotation by -theta about z)
	lo := [3]float64{o.cos*p.X + o.sin*p.Y, -o.sin*p.X + o.cos*p.Y, p.Z}
	ld := [3]float64{o.cos*rd.X + o.sin*rd.Y, -o.sin*rd.X + o.cos*rd.Y, rd.Z}
	tn, tf := -math.MaxFloat64, math.MaxFloat64
	axis, sign := 0, 0.0
	for i := 0; i < 3; i++ {
		if math.Abs(ld[i]) < 1e-12 {
			if lo[i] < -o.r || lo[i] > o.r {
				return 0, vec3{}, false
			}
			continue
		}
		inv := 1 / ld[i]
		t0, t1 := (-o.r-lo[i])*inv, (o.r-lo[i])*inv
		s := -1.0
		if t0 > t1 {
			t0, t1 = t1, t0
			s = 1
		}
		if t0 > tn {
			tn, axis, sign = t0, i, s
		}
		if t1 < tf {
			tf = t1
		}
		if tn > tf {
			return 0, vec3{}, false
		}
	}
	if tn < rayEps || tn >= tmax {
		return 0, vec3{}, false // rays never start inside a cube
	}
	var n vec3
	switch axis {
	case 0:
		n = vec3{o.cos * sign, o.sin * sign, 0}
	case 1:
		n = vec3{-o.sin * sign, o.cos * sign, 0}
	default:
		n = vec3{0, 0, sign}
	}
	return tn, n, true
}

func (o *robj) hitCylinder(ro, rd vec3, tmax float64) (float64, vec3, bool) {
	px, py := ro.X-o.c.X, ro.Y-o.c.Y
	a := rd.X*rd.X + rd.Y*rd.Y
	best := tmax
	var n vec3
	hit := false
	if a > 1e-12 {
		b := px*rd.X + py*rd.Y
		c := px*px + py*py - o.r*o.r
		disc := b*b - a*c
		if disc >= 0 {
			t := (-b - math.Sqrt(disc)) / a
			if t > rayEps && t < best {
				z := ro.Z + rd.Z*t - o.c.Z
				if z >= -o.r && z <= o.r {
					best, hit = t, true
					n = vec3{(px + rd.X*t) / o.r, (py + rd.Y*t) / o.r, 0}
				}
			}
		}
	}
	if math.Abs(rd.Z) > 1e-12 {
		t := (o.c.Z + o.r - ro.Z) / rd.Z // top cap
		if t > rayEps && t < best {
			x, y := px+rd.X*t, py+rd.Y*t
			if x*x+y*y <= o.r*o.r {
				best, hit = t, true
				n = vec3{0, 0, 1}
			}
		}
	}
	return best, n, hit
}

// footprint is the ground rectangle that holds the shadow of an object's bounding sphere under a
// distant light: a ground point outside it cannot be shadowed by the object.
type footprint struct {
	dir            vec3 // the light it was made for
	x0, y0, x1, y1 float64
}

func makeFootprint(o *robj, dir vec3) footprint {
	br := math.Sqrt(o.br2)
	// the sphere's points c+v (|v| <= br) reach the ground at (c+v) - dir*(c.z+v.z)/dir.z
	sx, sy := dir.X/dir.Z, dir.Y/dir.Z
	cx, cy := o.bc.X-sx*o.bc.Z, o.bc.Y-sy*o.bc.Z
	ex, ey := br*(1+math.Abs(sx))+1e-6, br*(1+math.Abs(sy))+1e-6
	return footprint{dir: dir, x0: cx - ex, y0: cy - ey, x1: cx + ex, y1: cy + ey}
}

// contains answers for ground points and the footprint's own light; anything else may be shadowed.
func (f *footprint) contains(p, dir vec3) bool {
	if dir != f.dir || p.Z > 1e-9 || p.Z < -1e-9 {
		return true
	}
	return p.X >= f.x0 && p.X <= f.x1 && p.Y >= f.y0 && p.Y <= f.y1
}

// renderer holds one scene ready to trace.
type renderer struct {
	cam    camera
	objs   []robj
	lights []light
	ground vec3     // ground albedo, linear
	cand   []uint32 // per pixel, the objects a camera ray may hit (see screenCandidates)
	// footprints[i] bounds object i's shadow on the ground under the key light
	footprints []footprint
	// watch and taint serve the incremental render of a modified scene (clevr_incremental.go)
	watch []wsphere
	taint bool
	dirs  []vec3 // centre ray directions (see centreRays)
}

// hit is the nearest surface along a ray: id is an object index, idGround or idSky.
type hit struct {
	id int
	t  float64
	n  vec3
}

func (r *renderer) trace(ro, rd vec3) hit { return r.traceSome(ro, rd, ^uint32(0)) }

// traceSome is trace restricted to the objects whose bit is set in candidates.
func (r *renderer) traceSome(ro, rd vec3, candidates uint32) hit {
	h := hit{id: idSky, t: math.MaxFloat64}
	for i := range r.objs {
		if candidates&(1<<i) == 0 {
			continue
		}
		if t, n, ok := r.objs[i].intersect(ro, rd, h.t); ok {
			h = hit{id: i, t: t, n: n}
		}
	}
	if rd.Z < -1e-12 {
		if t := -ro.Z / rd.Z; t > rayEps && t < h.t {
			h = hit{id: idGround, t: t, n: vec3{0, 0, 1}}
		}
	}
	return h
}

// occluded reports whether anything but object skip blocks the ray from p towards a distant light.
func (r *renderer) occluded(p, dir vec3, skip int) bool {
	for i := range r.objs {
		if i == skip {
			continue
		}
		if skip == idGround && !r.footprints[i].contains(p, dir) {
			continue
		}
		if _, _, ok := r.objs[i].intersect(p, dir, math.MaxFloat64); ok {
			return true
		}
	}
	return false
}

// sky is the studio environment seen in metal reflections: a gray dome brighter overhead and a
// softbox around the key light, which gives metal its bright streaks.
func (r *renderer) sky(d vec3) vec3 {
	v := 0.45 + 0.4*math.Max(0, d.Z)
	if len(r.lights) > 0 {
		if c := d.dot(r.lights[0].dir); c > 0.9 {
			v += 2.5 * math.Min(1, (c-0.9)/0.06)
		}
	}
	return vec3{v, v, v * 1.02}
}

// shade returns the linear colour of hit h on ray (ro, rd) and whether the key light is blocked.
// depth 1 is a reflection ray: no shadows, no further bounces.
func (r *renderer) shade(ro, rd vec3, h hit, depth int) (vec3, bool) {
	if h.id == idSky {
		return r.sky(rd), false
	}
	p := ro.madd(rd, h.t)
	n := h.n
	var albedo vec3
	metal := false
	if h.id == idGround {
		albedo = r.ground
	} else {
		o := &r.objs[h.id]
		albedo, metal = o.albedo, o.metal
	}
	shadowed := false
	diffuse := 0.18 // ambient from the studio
	spec := 0.0
	v := rd.scale(-1)
	for li, l := range r.lights {
		ndl := n.dot(l.dir)
		if ndl <= 0 {
			continue
		}
		if l.shadows && depth == 0 {
			r.note(p, l.dir)
			if r.occluded(p, l.dir, h.id) {
				if li == 0 {
					shadowed = true
				}
				continue
			}
		}
		diffuse += l.intensity * ndl
		if h.id != idGround {
			hv := l.dir.add(v).norm()
			ndh := math.Max(0, n.dot(hv))
			if metal {
				p8 := pow8(ndh)
				p16 := p8 * p8
				p64 := p16 * p16 * p16 * p16
				spec += l.intensity * (p64*p16*1.2 + p8*0.15) // ndh^80 and ndh^8
			} else {
				p4 := ndh * ndh * ndh * ndh
				spec += l.intensity * p4 * p4 * p4 * 0.12 // ndh^12
			}
		}
	}
	if h.id == idGround {
		// light falls off gently with distance from the scene centre, as in a studio
		fall := 1 / (1 + 0.004*(p.X*p.X+p.Y*p.Y))
		return albedo.scale(diffuse * fall), shadowed
	}
	if !metal {
		return albedo.scale(diffuse).add(vec3{spec, spec, spec}), shadowed
	}
	col := albedo.scale(0.2 * diffuse)
	if depth == 0 {
		rdir := reflect(rd, n)
		r.note(p, rdir)
		rh := r.trace(p, rdir)
		rc, _ := r.shade(p, rdir, rh, 1)
		// Schlick's Fresnel with the colour as the reflectance at normal incidence: metal
		// reflects its own colour face-on and turns white towards grazing angles
		c := 1 - math.Max(0, n.dot(v))
		f := c * c * c * c * c
		tint := albedo.scale(1 - f).add(vec3{f, f, f})
		col = col.add(rc.mul(tint).scale(0.9))
	} else {
		col = col.add(albedo.scale(0.4))
	}
	return col.add(vec3{spec, spec, spec}), shadowed
}

// screenCandidates says, per pixel, which objects a camera ray through it can hit: the screen
// rectangle of an object is the box of its bounding sphere's bounding cube projected, grown by two
// pixels, so that skipping the other objects never changes a result. Most pixels see only the
// ground and test no object at all.
func (r *renderer) screenCandidates() []uint32 {
	w, h := r.cam.w, r.cam.h
	cand := make([]uint32, w*h)
	for i := range r.objs {
		o := &r.objs[i]
		br := math.Sqrt(o.br2)
		x0, y0, x1, y1 := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
		for k := 0; k < 8; k++ {
			c := o.bc.add(vec3{br * float64(k&1*2-1), br * float64(k>>1&1*2-1), br * float64(k>>2&1*2-1)})
			px, py, depth := r.cam.project(c)
			if depth <= 0 { // behind the camera: no bound, test it everywhere
				x0, y0, x1, y1 = 0, 0, float64(w), float64(h)
				break
			}
			x0, y0, x1, y1 = math.Min(x0, px), math.Min(y0, py), math.Max(x1, px), math.Max(y1, py)
		}
		bx0, by0 := max(0, int(math.Floor(x0))-2), max(0, int(math.Floor(y0))-2)
		bx1, by1 := min(w, int(math.Ceil(x1))+2), min(h, int(math.Ceil(y1))+2)
		for y := by0; y < by1; y++ {
			for x := bx0; x < bx1; x++ {
				cand[y*w+x] |= 1 << i
			}
		}
	}
	return cand
}

// centreRays are the directions of the camera rays through the pixel centres; the two scenes of a
// pair share a camera and so share them.
func (c *camera) centreRays() []vec3 {
	d := make([]vec3, c.w*c.h)
	for y := 0; y < c.h; y++ {
		for x := 0; x < c.w; x++ {
			d[y*c.w+x] = c.ray(float64(x)+0.5, float64(y)+0.5)
		}
	}
	return d
}

// primaryIDs fills the object-id buffer with one ray per pixel centre.
func (r *renderer) primaryIDs() ([]int8, []hit) {
	w, h := r.cam.w, r.cam.h
	ids := make([]int8, w*h)
	hits := make([]hit, w*h)
	r.cand = r.screenCandidates()
	if r.dirs == nil {
		r.dirs = r.cam.centreRays()
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			hh := r.traceSome(r.cam.pos, r.dirs[y*w+x], r.cand[y*w+x])
			ids[y*w+x] = int8(hh.id)
			hits[y*w+x] = hh
		}
	}
	return ids, hits
}

// aaOffsets is a rotated-grid pattern for the extra samples of edge pixels.
var aaOffsets = [4][2]float64{{0.375, 0.125}, {0.875, 0.375}, {0.625, 0.875}, {0.125, 0.625}}

// render shades the image from the primary hits of primaryIDs.
func (r *renderer) render(ids []int8, hits []hit) *image.RGBA {
	img, _ := r.renderFrom(ids, hits, nil)
	return img
}

// edgeMap marks the pixels whose id or key-shadow state differs from one of their 8 neighbours
// (each neighbouring pair is compared once and marks both pixels).
func edgeMap(ids []int8, shadow []bool, w, h int) []bool {
	e := make([]bool, w*h)
	differ := func(i, j int) {
		if ids[i] != ids[j] || shadow[i] != shadow[j] {
			e[i], e[j] = true, true
		}
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*w + x
			if x+1 < w {
				differ(i, i+1)
			}
			if y+1 < h {
				differ(i, i+w)
				if x+1 < w {
					differ(i, i+w+1)
				}
				if x > 0 {
					differ(i, i+w-1)
				}
			}
		}
	}
	return e
}

var srgbLUT = func() [4097]uint8 {
	var t [4097]uint8
	for i := range t {
		t[i] = uint8(math.Round(255 * math.Pow(float64(i)/4096, 1/2.2)))
	}
	return t
}()

func toSRGB(v float64) uint8 {
	if v <= 0 {
		return 0
	}
	if v >= 1 {
		return 255
	}
	return srgbLUT[int(v*4096+0.5)]
}

func fromSRGB(c uint8) float64 { return math.Pow(float64(c)/255, 2.2) }

func pow8(x float64) float64 {
	x2 := x * x
	x4 := x2 * x2
	return x4 * x4
}
