package data

import (
	"encoding/json"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"slices"
)

// CLEVR change rules: what the modified scene does to K objects.
const (
	RuleReplace = "replace" // new shape and new colour at the same position (the paper's rule)
	RuleRecolor = "recolor" // new colour only
	RuleAdd     = "add"     // K new objects
	RuleRemove  = "remove"  // K objects taken away
	RuleMove    = "move"    // K objects moved to new free spots
)

// CLEVROptions configures CLEVR-style pairs. Zero values take the defaults.
type CLEVROptions struct {
	N          int   // number of pairs (GenerateCLEVR only)
	Seed       int64 // pair i is a function of (Seed, i) alone
	Width      int   // default 320
	Height     int   // default 240
	MinObjects int   // default 4
	MaxObjects int   // default 6
	Changes    int   // K, default 2
	Rule       string
	// MinVisible is the least number of pixels of every object that must be visible in both
	// images; default 200 at 480x320, scaled with the image area (100 at 320x240).
	MinVisible int
	Workers    int          `json:"-"` // default: all cores
	Progress   ProgressFunc `json:"-"`
}

func (o *CLEVROptions) withDefaults() (CLEVROptions, error) {
	c := *o
	if c.Width == 0 {
		c.Width = 320
	}
	if c.Height == 0 {
		c.Height = 240
	}
	if c.MinObjects == 0 {
		c.MinObjects = 4
	}
	if c.MaxObjects == 0 {
		c.MaxObjects = max(6, c.MinObjects)
	}
	if c.Changes == 0 {
		c.Changes = 2
	}
	if c.Rule == "" {
		c.Rule = RuleReplace
	}
	if c.MinVisible == 0 {
		c.MinVisible = max(1, 200*c.Width*c.Height/(480*320))
	}
	switch {
	case c.Width < 32 || c.Height < 32 || c.Width > 4096 || c.Height > 4096:
		return c, fmt.Errorf("clevr: image size %dx%d outside 32..4096", c.Width, c.Height)
	case c.MinObjects < 1 || c.MaxObjects < c.MinObjects || c.MaxObjects > 12:
		return c, fmt.Errorf("clevr: object range %d..%d invalid (1 <= min <= max <= 12)", c.MinObjects, c.MaxObjects)
	case c.Changes < 1:
		return c, fmt.Errorf("clevr: changes must be at least 1, got %d", c.Changes)
	case c.MinVisible < 1:
		return c, fmt.Errorf("clevr: min visible pixels must be positive, got %d", c.MinVisible)
	}
	switch c.Rule {
	case RuleReplace, RuleRecolor, RuleMove:
		if c.Changes > c.MinObjects {
			return c, fmt.Errorf("clevr: %d changes but scenes may have only %d objects", c.Changes, c.MinObjects)
		}
	case RuleRemove:
		if c.Changes >= c.MinObjects {
			return c, fmt.Errorf("clevr: removing %d objects would empty a scene of %d", c.Changes, c.MinObjects)
		}
	case RuleAdd:
		if c.MaxObjects+c.Changes > 12 {
			return c, fmt.Errorf("clevr: adding %d objects to %d exceeds 12", c.Changes, c.MaxObjects)
		}
	default:
		return c, fmt.Errorf("clevr: unknown rule %q (replace, recolor, add, remove, move)", c.Rule)
	}
	return c, nil
}

// CLEVRDetail is the Detail of a CLEVR pair: both scenes in full.
type CLEVRDetail struct {
	Rule     string     `json:"rule"`
	Changed  []int      `json:"changed_ids"` // object IDs that differ
	Original CLEVRScene `json:"original"`
	Modified CLEVRScene `json:"modified"`
}

// GenerateCLEVR writes opts.N CLEVR pairs into outDir (see the package comment for the format).
func GenerateCLEVR(outDir string, opts CLEVROptions) (Report, error) {
	c, err := opts.withDefaults()
	if err != nil {
		return Report{}, err
	}
	settings := c
	settings.N, settings.Workers, settings.Progress = 0, 0, nil
	return runIndexed(outDir, "clevr", c.N, settings, c.Workers, c.Progress,
		func(i int) (*Pair, *image.RGBA, *image.RGBA, error) { return RenderCLEVRPair(i, c) })
}

func pairID(i int) string { return fmt.Sprintf("%06d", i) }

// RenderCLEVRPair makes pair number index in memory. The result depends only on (opts, index).
func RenderCLEVRPair(index int, opts CLEVROptions) (*Pair, *image.RGBA, *image.RGBA, error) {
	c, err := opts.withDefaults()
	if err != nil {
		return nil, nil, nil, err
	}
	seed := mixSeed(c.Seed, index)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x636c657672))
	for attempt := 0; attempt < 200; attempt++ {
		n := c.MinObjects + rng.IntN(c.MaxObjects-c.MinObjects+1)
		orig, err := sampleLayout(rng, n)
		if err != nil {
			continue
		}
		mod, changed, err := modifyLayout(rng, orig, c.Rule, c.Changes)
		if err != nil {
			continue
		}
		ro, rm := newRenderer(&orig, c.Width, c.Height), newRenderer(&mod, c.Width, c.Height)
		idsO, hitsO := ro.primaryIDs()
		if !allVisible(idsO, len(orig.objs), c.MinVisible) {
			continue
		}
		rm.dirs = ro.dirs // one camera
		idsM, hitsM := rm.primaryIDs()
		if !allVisible(idsM, len(mod.objs), c.MinVisible) {
			continue
		}
		// the original is rendered watching the changed objects of both scenes, so that the
		// modified image reshades only the pixels they can affect
		ro.watch = append(watchSpheres(ro, &orig, changed), watchSpheres(rm, &mod, changed)...)
		imgO, memoO := ro.renderFrom(idsO, hitsO, nil)
		imgM, _ := rm.renderFrom(idsM, hitsM, memoO)
		d := CLEVRDetail{Rule: c.Rule, Changed: changed,
			Original: finishScene(&orig, ro, idsO), Modified: finishScene(&mod, rm, idsM)}
		p := &Pair{ID: pairID(index), Kind: KindCLEVR, Width: c.Width, Height: c.Height, Seed: seed}
		p.Items, p.Changes = clevrItems(&d)
		if p.Detail, err = json.Marshal(d); err != nil {
			return nil, nil, nil, fmt.Errorf("clevr pair %d: %w", index, err)
		}
		return p, imgO, imgM, nil
	}
	return nil, nil, nil, fmt.Errorf("clevr pair %d: no scene met the placement and visibility rules in 200 attempts (%dx%d, %d..%d objects, %d visible pixels)",
		index, c.Width, c.Height, c.MinObjects, c.MaxObjects, c.MinVisible)
}

// mixSeed derives a pair's own seed from the run seed and its index (splitmix64).
func mixSeed(seed int64, index int) int64 {
	z := uint64(seed) + 0x9e3779b97f4a7c15*uint64(index+1)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return int64((z ^ (z >> 31)) >> 1)
}

// modifyLayout applies a change rule to k objects and returns the changed object IDs, sorted.
func modifyLayout(rng *rand.Rand, l layout, rule string, k int) (layout, []int, error) {
	m := l
	m.objs = slices.Clone(l.objs)
	cam := newCamera(arr(l.cam.Position), vec3{}, l.cam.FOV, 4, 3)
	pick := rng.Perm(len(m.objs))[:min(k, len(m.objs))]
	var changed []int
	switch rule {
	case RuleReplace, RuleRecolor:
		for _, i := range pick {
			o := &m.objs[i]
			o.Color = other(rng, CLEVRColors, o.Color)
			if rule == RuleReplace {
				o.Shape = other(rng, CLEVRShapes, o.Shape)
				r := clevrRadius[o.Size]
				o.Coords[2] = r
				if o.Shape == "cube" {
					o.Coords[2] = r / math.Sqrt2
				}
			}
			changed = append(changed, o.ID)
		}
	case RuleMove:
		for _, i := range pick {
			o, err := placeObject(rng, m.objs, &m.objs[i], cam)
			if err != nil {
				return m, nil, err
			}
			m.objs[i] = o
			changed = append(changed, o.ID)
		}
	case RuleRemove:
		slices.Sort(pick)
		for j := len(pick) - 1; j >= 0; j-- {
			changed = append(changed, m.objs[pick[j]].ID)
			m.objs = slices.Delete(m.objs, pick[j], pick[j]+1)
		}
	case RuleAdd:
		for j := 0; j < k; j++ {
			o, err := placeObject(rng, m.objs, nil, cam)
			if err != nil {
				return m, nil, err
			}
			o.ID = len(l.objs) + j
			m.objs = append(m.objs, o)
			changed = append(changed, o.ID)
		}
	}
	slices.Sort(changed)
	return m, changed, nil
}

// other draws a value from vocab different from cur.
func other(rng *rand.Rand, vocab []string, cur string) string {
	for {
		if v := vocab[rng.IntN(len(vocab))]; v != cur {
			return v
		}
	}
}

func allVisible(ids []int8, n, minPixels int) bool {
	counts := make([]int, n)
	for _, id := range ids {
		if id >= 0 {
			counts[id]++
		}
	}
	for _, c := range counts {
		if c < minPixels {
			return false
		}
	}
	return true
}

// clevrItems lists every object of either scene (by ID) and one change per changed object, its box
// the union of the object's visible boxes in both images, grown by one pixel for anti-aliasing.
func clevrItems(d *CLEVRDetail) ([]Item, []Change) {
	byID := func(s *CLEVRScene, id int) *CLEVRObject {
		for i := range s.Objects {
			if s.Objects[i].ID == id {
				return &s.Objects[i]
			}
		}
		return nil
	}
	maxID := 0
	for _, s := range []*CLEVRScene{&d.Original, &d.Modified} {
		for _, o := range s.Objects {
			maxID = max(maxID, o.ID)
		}
	}
	var items []Item
	var changes []Change
	for id := 0; id <= maxID; id++ {
		a, b := byID(&d.Original, id), byID(&d.Modified, id)
		var it Item
		box := Box{X0: d.Original.Width, Y0: d.Original.Height}
		if a != nil {
			it.Original = a.Describe()
			box = unionBox(box, a.Box)
		}
		if b != nil {
			it.Modified = b.Describe()
			if d.Rule == RuleMove && slices.Contains(d.Changed, id) {
				it.Modified += " (moved)" // its position word alone may not change
			}
			box = unionBox(box, b.Box)
		}
		items = append(items, it)
		if slices.Contains(d.Changed, id) {
			changes = append(changes, Change{Kind: d.Rule, Before: it.Original, After: it.Modified,
				Box: growBox(box, 1, d.Original.Width, d.Original.Height)})
		}
	}
	return items, changes
}

func unionBox(a, b Box) Box {
	if b.X1 <= b.X0 || b.Y1 <= b.Y0 {
		return a
	}
	if a.X1 <= a.X0 || a.Y1 <= a.Y0 {
		return b
	}
	return Box{X0: min(a.X0, b.X0), Y0: min(a.Y0, b.Y0), X1: max(a.X1, b.X1), Y1: max(a.Y1, b.Y1)}
}

func growBox(b Box, d, w, h int) Box {
	return Box{X0: max(0, b.X0-d), Y0: max(0, b.Y0-d), X1: min(w, b.X1+d), Y1: min(h, b.Y1+d)}
}
