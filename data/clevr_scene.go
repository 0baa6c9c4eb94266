package data

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// The CLEVR vocabulary (Johnson et al. 2017), with the colours and sizes of its Blender generator.
var (
	CLEVRShapes    = []string{"cube", "sphere", "cylinder"}
	CLEVRColors    = []string{"gray", "red", "blue", "green", "brown", "purple", "cyan", "yellow"}
	CLEVRMaterials = []string{"rubber", "metal"}
	CLEVRSizes     = []string{"large", "small"}
)

var clevrRGB = map[string][3]uint8{
	"gray": {87, 87, 87}, "red": {173, 35, 35}, "blue": {42, 75, 215}, "green": {29, 105, 20},
	"brown": {129, 74, 25}, "purple": {129, 38, 192}, "cyan": {41, 208, 208}, "yellow": {255, 238, 51},
}

var clevrRadius = map[string]float64{"large": 0.7, "small": 0.35}

// CLEVRObject is one object of a scene as recorded in the pair's JSON.
type CLEVRObject struct {
	// ID follows an object from the original to the modified scene (a replaced object keeps it).
	ID       int    `json:"id"`
	Shape    string `json:"shape"`
	Color    string `json:"color"`
	Material string `json:"material"`
	Size     string `json:"size"`
	// Coords is the centre in world units: x, y on the ground, z the height of the centre.
	Coords   [3]float64 `json:"3d_coords"`
	Rotation float64    `json:"rotation"` // degrees about the vertical axis
	// Pixel is the projected centre: x, y in pixels from the top-left corner, and camera depth.
	Pixel         [3]float64 `json:"pixel_coords"`
	VisiblePixels int        `json:"visible_pixels"` // pixels whose centre ray hits it first
	Box           Box        `json:"box"`            // bounding box of those pixels
	Where         string     `json:"where"`          // coarse position ("at the back left")
}

// Describe is the object in plain CLEVR words, e.g. "large red metal cube at the back left".
func (o CLEVRObject) Describe() string {
	return fmt.Sprintf("%s %s %s %s %s", o.Size, o.Color, o.Material, o.Shape, o.Where)
}

// CLEVRScene is one rendered scene.
type CLEVRScene struct {
	Width   int           `json:"width"`
	Height  int           `json:"height"`
	Camera  CLEVRCamera   `json:"camera"`
	Lights  []CLEVRLight  `json:"lights"`
	Objects []CLEVRObject `json:"objects"`
	// Directions are the unit ground vectors the relations are measured along (as in CLEVR).
	Directions map[string][3]float64 `json:"directions"`
	// Relations[r][i] lists the indices j of the objects that are r of object i ("left": j is left
	// of i), with the CLEVR rule: the offset along the direction exceeds 0.2 world units.
	Relations map[string][][]int `json:"relationships"`
}

// CLEVRCamera is a pinhole camera looking at LookAt.
type CLEVRCamera struct {
	Position [3]float64 `json:"position"`
	LookAt   [3]float64 `json:"look_at"`
	FOV      float64    `json:"hfov_degrees"`
}

// CLEVRLight is a distant light; only the key light casts shadows.
type CLEVRLight struct {
	Name      string     `json:"name"`
	Direction [3]float64 `json:"direction"` // towards the light
	Intensity float64    `json:"intensity"`
	Shadows   bool       `json:"shadows"`
}

// layout is a scene before rendering: camera, lights and objects in world space.
type layout struct {
	cam    CLEVRCamera
	lights []CLEVRLight
	objs   []CLEVRObject
}

const (
	clevrHalfExtent = 3.0  // objects lie in [-3,3]^2
	clevrMinDist    = 0.25 // free space between the bounding circles of two objects
	clevrMargin     = 0.4  // offset along left/behind below which two objects are too aligned
	relationEps     = 0.2
)

// sampleLayout draws camera, lights and n objects; it fails when the objects cannot be placed.
func sampleLayout(rng *rand.Rand, n int) (layout, error) {
	j := func(s float64) float64 { return (rng.Float64()*2 - 1) * s }
	l := layout{cam: CLEVRCamera{
		Position: [3]float64{7.36 + j(0.5), -6.93 + j(0.5), 4.96 + j(0.5)},
		FOV:      49.13,
	}}
	cam := newCamera(arr(l.cam.Position), vec3{}, l.cam.FOV, 4, 3)
	fwdG := vec3{cam.fwd.X, cam.fwd.Y, 0}.norm()
	rightG := vec3{cam.right.X, cam.right.Y, 0}.norm()
	up := vec3{0, 0, 1}
	mk := func(name string, d vec3, in float64, sh bool) CLEVRLight {
		d = d.add(vec3{j(0.15), j(0.15), j(0.15)}).norm()
		return CLEVRLight{Name: name, Direction: [3]float64{d.X, d.Y, d.Z}, Intensity: in, Shadows: sh}
	}
	l.lights = []CLEVRLight{
		mk("key", rightG.scale(0.55).sub(fwdG.scale(0.35)).add(up.scale(1)), 0.85, true),
		mk("fill", rightG.scale(-0.8).sub(fwdG.scale(0.4)).add(up.scale(0.6)), 0.3, false),
		mk("back", fwdG.scale(1).add(up.scale(0.9)), 0.25, false),
	}
	for i := 0; i < n; i++ {
		o, err := placeObject(rng, l.objs, nil, cam)
		if err != nil {
			return l, err
		}
		o.ID = i
		l.objs = append(l.objs, o)
	}
	return l, nil
}

// placeObject draws a random object at a free spot; with keep non-nil it moves that object instead.
func placeObject(rng *rand.Rand, others []CLEVRObject, keep *CLEVRObject, cam camera) (CLEVRObject, error) {
	var o CLEVRObject
	if keep != nil {
		o = *keep
	} else {
		o = CLEVRObject{
			Shape:    CLEVRShapes[rng.IntN(len(CLEVRShapes))],
			Color:    CLEVRColors[rng.IntN(len(CLEVRColors))],
			Material: CLEVRMaterials[rng.IntN(len(CLEVRMaterials))],
			Size:     CLEVRSizes[rng.IntN(len(CLEVRSizes))],
			Rotation: math.Round(rng.Float64()*36000) / 100,
		}
	}
	r := clevrRadius[o.Size]
	left := cam.right.scale(-1)
	behind := vec3{cam.fwd.X, cam.fwd.Y, 0}.norm()
	for try := 0; try < 100; try++ {
		x := round3((rng.Float64()*2 - 1) * clevrHalfExtent)
		y := round3((rng.Float64()*2 - 1) * clevrHalfExtent)
		ok := true
		for _, p := range others {
			if keep != nil && p.ID == keep.ID {
				continue
			}
			dx, dy := x-p.Coords[0], y-p.Coords[1]
			if math.Hypot(dx, dy)-r-clevrRadius[p.Size] < clevrMinDist {
				ok = false
				break
			}
			d := vec3{dx, dy, 0}
			if math.Abs(d.dot(left)) < clevrMargin || math.Abs(d.dot(behind)) < clevrMargin {
				ok = false
				break
			}
		}
		if ok {
			o.Coords = [3]float64{x, y, r}
			if o.Shape == "cube" {
				o.Coords[2] = r / math.Sqrt2
			}
			return o, nil
		}
	}
	return o, fmt.Errorf("no free spot for a %s object after 100 tries", o.Size)
}

func arr(a [3]float64) vec3 { return vec3{a[0], a[1], a[2]} }

// newRenderer prepares a layout for tracing at w x h.
func newRenderer(l *layout, w, h int) *renderer {
	r := &renderer{cam: newCamera(arr(l.cam.Position), arr(l.cam.LookAt), l.cam.FOV, w, h)}
	g := fromSRGB(150)
	r.ground = vec3{g, g, g}
	for _, li := range l.lights {
		r.lights = append(r.lights, light{dir: arr(li.Direction), intensity: li.Intensity, shadows: li.Shadows})
	}
	for _, o := range l.objs {
		r.objs = append(r.objs, toRobj(o))
	}
	for i := range r.objs {
		fp := footprint{x0: math.Inf(-1), y0: math.Inf(-1), x1: math.Inf(1), y1: math.Inf(1)}
		if len(r.lights) > 0 && r.lights[0].dir.Z > 0 {
			fp = makeFootprint(&r.objs[i], r.lights[0].dir)
		}
		r.footprints = append(r.footprints, fp)
	}
	return r
}

func toRobj(o CLEVRObject) robj {
	rgb := clevrRGB[o.Color]
	ro := robj{
		c:      arr(o.Coords),
		albedo: vec3{fromSRGB(rgb[0]), fromSRGB(rgb[1]), fromSRGB(rgb[2])},
		metal:  o.Material == "metal",
	}
	th := o.Rotation * math.Pi / 180
	ro.cos, ro.sin = math.Cos(th), math.Sin(th)
	ro.bc = ro.c
	switch o.Shape {
	case "cube":
		ro.shape, ro.r = shapeCube, o.Coords[2]
		ro.br2 = 3 * ro.r * ro.r * 1.0001
	case "sphere":
		ro.shape, ro.r = shapeSphere, o.Coords[2]
		ro.br2 = ro.r * ro.r
	default:
		ro.shape, ro.r = shapeCylinder, o.Coords[2]
		ro.br2 = 2 * ro.r * ro.r * 1.0001
	}
	return ro
}

// finishScene records pixel coordinates, visible pixels, boxes, position words and relations.
func finishScene(l *layout, r *renderer, ids []int8) CLEVRScene {
	w, h := r.cam.w, r.cam.h
	s := CLEVRScene{Width: w, Height: h, Camera: l.cam, Lights: l.lights}
	s.Objects = make([]CLEVRObject, len(l.objs))
	copy(s.Objects, l.objs)
	boxes := make([]Box, len(s.Objects))
	for i := range boxes {
		boxes[i] = Box{X0: w, Y0: h}
	}
	counts := make([]int, len(s.Objects))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			id := int(ids[y*w+x])
			if id < 0 {
				continue
			}
			counts[id]++
			b := &boxes[id]
			b.X0, b.Y0 = min(b.X0, x), min(b.Y0, y)
			b.X1, b.Y1 = max(b.X1, x+1), max(b.Y1, y+1)
		}
	}
	for i := range s.Objects {
		o := &s.Objects[i]
		px, py, d := r.cam.project(arr(o.Coords))
		o.Pixel = [3]float64{round3(px), round3(py), round3(d)}
		o.VisiblePixels = counts[i]
		if counts[i] == 0 {
			boxes[i] = Box{}
		}
		o.Box = boxes[i]
		// the ground point under the centre, so that a replaced object keeps its position word
		gx, gy, _ := r.cam.project(vec3{o.Coords[0], o.Coords[1], 0})
		o.Where = whereWord(gx, gy, w, h)
	}
	left := r.cam.right.scale(-1)
	behind := vec3{r.cam.fwd.X, r.cam.fwd.Y, 0}.norm()
	dirs := map[string]vec3{"left": left, "right": left.scale(-1), "behind": behind, "front": behind.scale(-1)}
	s.Directions = map[string][3]float64{}
	s.Relations = map[string][][]int{}
	for name, d := range dirs {
		s.Directions[name] = [3]float64{round3(d.X), round3(d.Y), 0}
		rel := make([][]int, len(s.Objects))
		for i, a := range s.Objects {
			rel[i] = []int{}
			for j, b := range s.Objects {
				if i != j && arr(b.Coords).sub(arr(a.Coords)).dot(d) > relationEps {
					rel[i] = append(rel[i], j)
				}
			}
		}
		s.Relations[name] = rel
	}
	return s
}

// whereWord names the ninth of the image a pixel falls in: "at the back left", "in the center".
func whereWord(px, py float64, w, h int) string {
	hz, vt := "", ""
	switch {
	case px < float64(w)/3:
		hz = "left"
	case px >= 2*float64(w)/3:
		hz = "right"
	}
	switch {
	case py < float64(h)/3:
		vt = "back"
	case py >= 2*float64(h)/3:
		vt = "front"
	}
	switch {
	case hz != "" && vt != "":
		return "at the " + vt + " " + hz
	case vt != "":
		return "at the " + vt
	case hz != "":
		return "on the " + hz
	}
	return "in the center"
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
