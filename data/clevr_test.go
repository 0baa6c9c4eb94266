package data

import (
	"bytes"
	"encoding/json"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// small keeps the tests quick: 160x120 images (the minimum-visible rule scales with the area).
var small = CLEVROptions{Width: 160, Height: 120}

func TestCLEVRSameSeedSameBytesAnyWorkers(t *testing.T) {
	opts := small
	opts.N, opts.Seed = 4, 11
	a, b := t.TempDir(), t.TempDir()
	opts.Workers = 1
	_, err := GenerateCLEVR(a, opts)
	require.NoError(t, err)
	opts.Workers = 3
	_, err = GenerateCLEVR(b, opts)
	require.NoError(t, err)
	requireSameFiles(t, a, b)

	opts.Seed = 12
	c := t.TempDir()
	_, err = GenerateCLEVR(c, opts)
	require.NoError(t, err)
	x, _ := os.ReadFile(filepath.Join(a, "000000.original.png"))
	y, _ := os.ReadFile(filepath.Join(c, "000000.original.png"))
	require.NotEqual(t, x, y, "another seed must give other scenes")
}

// requireSameFiles checks that two folders hold the same file names with the same bytes.
func requireSameFiles(t *testing.T, a, b string) {
	t.Helper()
	ea, err := os.ReadDir(a)
	require.NoError(t, err)
	eb, err := os.ReadDir(b)
	require.NoError(t, err)
	require.Equal(t, len(ea), len(eb), "file count")
	for i := range ea {
		require.Equal(t, ea[i].Name(), eb[i].Name())
		x, _ := os.ReadFile(filepath.Join(a, ea[i].Name()))
		y, _ := os.ReadFile(filepath.Join(b, eb[i].Name()))
		require.True(t, bytes.Equal(x, y), "%s differs", ea[i].Name())
	}
}

func TestCLEVRResumeCompletesPartialFolder(t *testing.T) {
	opts := small
	opts.N, opts.Seed, opts.Workers = 4, 3, 2
	fresh, partial := t.TempDir(), t.TempDir()
	_, err := GenerateCLEVR(fresh, opts)
	require.NoError(t, err)
	_, err = GenerateCLEVR(partial, opts)
	require.NoError(t, err)
	// an interrupted run: pair 2 has its images but no JSON, pair 3 nothing, a temp file is left
	// over, the index was never rebuilt
	for _, f := range []string{"000002.json", "000003.json", "000003.original.png", "000003.modified.png", IndexFile} {
		require.NoError(t, os.Remove(filepath.Join(partial, f)))
	}
	require.NoError(t, os.WriteFile(filepath.Join(partial, ".000003.json.tmp123"), []byte("{"), 0o644))
	rep, err := GenerateCLEVR(partial, opts)
	require.NoError(t, err)
	require.Equal(t, 2, rep.Reused)
	require.Equal(t, 2, rep.Written)
	require.Equal(t, 4, rep.Total)
	requireSameFiles(t, fresh, partial)

	pairs, err := ReadDir(partial)
	require.NoError(t, err)
	require.Len(t, pairs, 4)
	for i, p := range pairs {
		require.Equal(t, pairID(i), p.ID)
		require.Equal(t, KindCLEVR, p.Kind)
		require.FileExists(t, p.OriginalPath())
	}
}

// sceneRenderer rebuilds a renderer from a scene as recorded in the JSON (so the JSON is enough
// to reproduce the geometry).
func sceneRenderer(s CLEVRScene) *renderer {
	l := layout{cam: s.Camera, lights: s.Lights, objs: s.Objects}
	return newRenderer(&l, s.Width, s.Height)
}

func decodeCLEVR(t *testing.T, p *Pair) CLEVRDetail {
	t.Helper()
	var d CLEVRDetail
	require.NoError(t, json.Unmarshal(p.Detail, &d))
	return d
}

// TestCLEVRChangedObjectsExplainEveryPixelDifference: the pixels that differ between the images
// lie in the change boxes, except for the two effects a changed object has elsewhere, which are
// defined here independently of the renderer's shading code:
//   - shadow region: points of the other surfaces whose ray towards the key light passes through
//     the bounding sphere (1.5 x size radius around the centre) of a changed object, in either scene;
//   - reflection region: pixels on a metal object in either scene;
//
// each grown by one pixel for the anti-aliasing samples. Every change box must also contain
// differing pixels, and the items must say exactly which objects changed.
func TestCLEVRChangedObjectsExplainEveryPixelDifference(t *testing.T) {
	cases := []struct {
		rule string
		k    int
	}{{RuleReplace, 2}, {RuleReplace, 1}, {RuleRecolor, 2}, {RuleAdd, 1}, {RuleRemove, 2}, {RuleMove, 1}}
	for ci, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			for idx := 0; idx < 3; idx++ {
				opts := small
				opts.Seed, opts.Rule, opts.Changes = int64(100+ci), tc.rule, tc.k
				p, orig, mod, err := RenderCLEVRPair(idx, opts)
				require.NoError(t, err)
				d := decodeCLEVR(t, p)
				require.Len(t, d.Changed, tc.k)
				require.Len(t, p.Changes, tc.k)
				changedItems := 0
				for _, it := range p.Items {
					if it.Changed() {
						changedItems++
					}
				}
				require.Equal(t, tc.k, changedItems, "items that differ")
				allowed := allowanceMask(d)
				w, h := d.Original.Width, d.Original.Height
				inBox := make([]bool, w*h)
				for _, c := range p.Changes {
					for y := c.Box.Y0; y < c.Box.Y1; y++ {
						for x := c.Box.X0; x < c.Box.X1; x++ {
							inBox[y*w+x] = true
						}
					}
				}
				for y := 0; y < h; y++ {
					for x := 0; x < w; x++ {
						if pixelDiff(orig, mod, x, y) > 0 && !inBox[y*w+x] && !allowed[y*w+x] {
							t.Fatalf("pair %d: pixel (%d,%d) differs outside every change box, shadow and reflection region", idx, x, y)
						}
					}
				}
				for _, c := range p.Changes {
					n := 0
					for y := c.Box.Y0; y < c.Box.Y1; y++ {
						for x := c.Box.X0; x < c.Box.X1; x++ {
							if pixelDiff(orig, mod, x, y) > 8 {
								n++
							}
						}
					}
					require.Greater(t, n, opts.MinVisible/2+10, "pair %d: change %q -> %q shows too few differing pixels", idx, c.Before, c.After)
				}
			}
		})
	}
}

func pixelDiff(a, b *image.RGBA, x, y int) int {
	i := a.PixOffset(x, y)
	d := 0
	for c := 0; c < 3; c++ {
		v := int(a.Pix[i+c]) - int(b.Pix[i+c])
		d = max(d, v, -v)
	}
	return d
}

// allowanceMask marks the shadow and reflection regions of the changed objects (see above).
func allowanceMask(d CLEVRDetail) []bool {
	w, h := d.Original.Width, d.Original.Height
	type sphere struct {
		c vec3
		r float64
	}
	var changed []sphere
	for _, s := range []CLEVRScene{d.Original, d.Modified} {
		for _, o := range s.Objects {
			for _, id := range d.Changed {
				if o.ID == id {
					changed = append(changed, sphere{arr(o.Coords), 1.5 * clevrRadius[o.Size]})
				}
			}
		}
	}
	key := arr(d.Original.Lights[0].Direction)
	mask := make([]bool, w*h)
	for _, s := range []CLEVRScene{d.Original, d.Modified} {
		r := sceneRenderer(s)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				rd := r.cam.ray(float64(x)+0.5, float64(y)+0.5)
				hh := r.trace(r.cam.pos, rd)
				if hh.id >= 0 && s.Objects[hh.id].Material == "metal" {
					mask[y*w+x] = true
					continue
				}
				if hh.id == idSky || (hh.id >= 0 && slices.Contains(d.Changed, s.Objects[hh.id].ID)) {
					continue // a changed object's own pixels must be in its box
				}
				p := r.cam.pos.madd(rd, hh.t)
				for _, c := range changed {
					// distance from the sphere centre to the ray p + t*key, t > 0
					t := math.Max(0, c.c.sub(p).dot(key))
					if p.madd(key, t).sub(c.c).length() < c.r {
						mask[y*w+x] = true
						break
					}
				}
			}
		}
	}
	grown := make([]bool, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					xx, yy := x+dx, y+dy
					if xx >= 0 && yy >= 0 && xx < w && yy < h && mask[yy*w+xx] {
						grown[y*w+x] = true
					}
				}
			}
		}
	}
	return grown
}

func TestCLEVRVisibilityRuleHolds(t *testing.T) {
	opts := small
	opts.Seed, opts.MaxObjects = 5, 8
	opts.MinVisible = 60
	for idx := 0; idx < 4; idx++ {
		p, _, _, err := RenderCLEVRPair(idx, opts)
		require.NoError(t, err)
		d := decodeCLEVR(t, p)
		for _, s := range []CLEVRScene{d.Original, d.Modified} {
			ids, _ := sceneRenderer(s).primaryIDs()
			counts := map[int]int{}
			for _, id := range ids {
				counts[int(id)]++
			}
			for i, o := range s.Objects {
				require.GreaterOrEqual(t, o.VisiblePixels, opts.MinVisible, "object %d of pair %d", o.ID, idx)
				require.Equal(t, counts[i], o.VisiblePixels, "recorded visible pixels of object %d", o.ID)
				require.True(t, o.Box.X0 <= int(o.Pixel[0])+2 && int(o.Pixel[0])-2 <= o.Box.X1, "projected centre near the visible box")
			}
		}
	}
	// a rule no scene can meet is an error that says so, not a hang or a silent pass
	opts.Width, opts.Height, opts.MinVisible = 48, 36, 2000
	_, _, _, err := RenderCLEVRPair(0, opts)
	require.ErrorContains(t, err, "visibility")
}

func TestCLEVRSceneJSON(t *testing.T) {
	p, _, _, err := RenderCLEVRPair(0, CLEVROptions{Seed: 9, Width: 160, Height: 120})
	require.NoError(t, err)
	d := decodeCLEVR(t, p)
	require.Equal(t, RuleReplace, d.Rule)
	s := d.Original
	require.Len(t, s.Lights, 3)
	n := len(s.Objects)
	require.True(t, n >= 4 && n <= 6)
	for _, pair := range [][2]string{{"left", "right"}, {"front", "behind"}} {
		for i := 0; i < n; i++ {
			for _, j := range s.Relations[pair[0]][i] {
				require.Contains(t, s.Relations[pair[1]][j], i, "%d %s of %d implies the converse", j, pair[0], i)
			}
			// with the placement margin every other object is on one side or the other
			require.Equal(t, n-1, len(s.Relations[pair[0]][i])+len(s.Relations[pair[1]][i]))
		}
	}
	for i, o := range s.Objects {
		m := d.Modified.Objects[i]
		require.Equal(t, o.Coords[:2], m.Coords[:2], "replace keeps positions")
		require.Equal(t, o.Size, m.Size)
		if o.Color != m.Color {
			require.NotEqual(t, o.Shape, m.Shape, "replace changes colour and shape together")
		}
		words := strings.Fields(o.Describe())
		require.Contains(t, CLEVRSizes, words[0])
		require.Contains(t, CLEVRColors, words[1])
		require.Contains(t, CLEVRMaterials, words[2])
		require.Contains(t, CLEVRShapes, words[3])
	}
}

func TestCLEVRBadOptions(t *testing.T) {
	cases := []struct {
		name string
		opts CLEVROptions
		want string
	}{
		{"n zero", CLEVROptions{N: 0}, "must be positive"},
		{"n negative", CLEVROptions{N: -3}, "must be positive"},
		{"tiny image", CLEVROptions{N: 1, Width: 8, Height: 8}, "image size"},
		{"object range", CLEVROptions{N: 1, MinObjects: 5, MaxObjects: 3}, "object range"},
		{"too many changes", CLEVROptions{N: 1, MinObjects: 2, MaxObjects: 3, Changes: 3}, "changes"},
		{"remove all", CLEVROptions{N: 1, MinObjects: 2, MaxObjects: 3, Changes: 2, Rule: RuleRemove}, "empty a scene"},
		{"unknown rule", CLEVROptions{N: 1, Rule: "explode"}, "unknown rule"},
		{"negative changes", CLEVROptions{N: 1, Changes: -1}, "changes"},
		{"negative visible", CLEVROptions{N: 1, MinVisible: -1}, "visible"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := GenerateCLEVR(t.TempDir(), tc.opts)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestGenerateUnwritableOutput(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	_, err := GenerateCLEVR(filepath.Join(file, "out"), CLEVROptions{N: 1})
	require.ErrorContains(t, err, "output folder")
	require.ErrorContains(t, err, file)
	_, err = GenerateCharts(file, ChartOptions{N: 1})
	require.ErrorContains(t, err, "output folder")
}

func TestGenerateRefusesFolderWithOtherSettings(t *testing.T) {
	out := t.TempDir()
	opts := small
	opts.N, opts.Seed = 1, 1
	_, err := GenerateCLEVR(out, opts)
	require.NoError(t, err)
	opts.N, opts.Workers = 2, 1 // more pairs, other workers: the same folder, extended
	rep, err := GenerateCLEVR(out, opts)
	require.NoError(t, err)
	require.Equal(t, 1, rep.Reused)
	opts.Seed = 2
	_, err = GenerateCLEVR(out, opts)
	require.ErrorContains(t, err, "other settings")
	_, err = GenerateCharts(out, ChartOptions{N: 1})
	require.ErrorContains(t, err, "other settings")
}

func TestReadDirWithoutIndex(t *testing.T) {
	out := t.TempDir()
	opts := small
	opts.N = 2
	_, err := GenerateCLEVR(out, opts)
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(out, IndexFile)))
	pairs, err := ReadDir(out)
	require.NoError(t, err, "settings.json is not a pair")
	require.Len(t, pairs, 2)
}

// TestCLEVRCullingIsExact: the fast path (screen-space candidates for camera rays, ground
// footprints for shadow rays) gives the same bytes as testing every object for every ray.
func TestCLEVRCullingIsExact(t *testing.T) {
	for idx := 0; idx < 3; idx++ {
		p, orig, _, err := RenderCLEVRPair(idx, CLEVROptions{Seed: 31, Width: 160, Height: 120, MaxObjects: 9})
		require.NoError(t, err)
		d := decodeCLEVR(t, p)
		r := sceneRenderer(d.Original)
		fastIDs, _ := r.primaryIDs()
		w, h := r.cam.w, r.cam.h
		ids, hits := make([]int8, w*h), make([]hit, w*h)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				hits[y*w+x] = r.trace(r.cam.pos, r.cam.ray(float64(x)+0.5, float64(y)+0.5))
				ids[y*w+x] = int8(hits[y*w+x].id)
			}
		}
		require.Equal(t, ids, fastIDs, "object-id buffer of pair %d", idx)
		for i := range r.cand {
			r.cand[i] = ^uint32(0)
		}
		for i := range r.footprints {
			r.footprints[i] = footprint{x0: math.Inf(-1), y0: math.Inf(-1), x1: math.Inf(1), y1: math.Inf(1)}
		}
		full := r.render(ids, hits)
		require.Equal(t, orig.Pix, full.Pix, "pair %d", idx)
	}
}

// TestCLEVRIncrementalRenderIsExact: the modified image, made by reusing the original's clean
// pixels, equals a full render of the modified scene byte for byte, for every change rule.
func TestCLEVRIncrementalRenderIsExact(t *testing.T) {
	for ri, rule := range []string{RuleReplace, RuleRecolor, RuleAdd, RuleRemove, RuleMove} {
		for idx := 0; idx < 3; idx++ {
			p, _, mod, err := RenderCLEVRPair(idx, CLEVROptions{Seed: int64(40 + ri), Width: 160, Height: 120, Rule: rule})
			require.NoError(t, err)
			d := decodeCLEVR(t, p)
			r := sceneRenderer(d.Modified)
			ids, hits := r.primaryIDs()
			full := r.render(ids, hits)
			require.Equal(t, full.Pix, mod.Pix, "%s pair %d", rule, idx)
		}
	}
}

// A pair folder whose image is an empty file (an interrupted copy) or a folder is refused by
// ReadDir, naming the image, instead of reaching the model as a picture.
func TestReadDirRefusesEmptyImage(t *testing.T) {
	out := t.TempDir()
	opts := small
	opts.N = 2
	_, err := GenerateCLEVR(out, opts)
	require.NoError(t, err)
	img := filepath.Join(out, "000001.modified.png")
	require.NoError(t, os.WriteFile(img, nil, 0o644))
	_, err = ReadDir(out)
	require.ErrorContains(t, err, img+" is empty")
	require.NoError(t, os.Remove(img))
	require.NoError(t, os.Mkdir(img, 0o755))
	_, err = ReadDir(out)
	require.ErrorContains(t, err, img+" is not a file")
}
