package selfplay

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vzlocal/vzlocal/data"
)

// spyTestPairs writes n small pairs in the data folder format (PNG images, index.jsonl) and reads
// them back with data.ReadDir, as `vzlocal play` would.
func spyTestPairs(t *testing.T, n int) []*data.Pair {
	t.Helper()
	dir := t.TempDir()
	shapes := []string{"cube", "sphere", "cylinder"}
	colors := []string{"red", "blue", "green", "gray", "purple", "cyan", "yellow", "brown"}
	var index strings.Builder
	for i := range n {
		id := fmt.Sprintf("%06d", i)
		p := data.Pair{ID: id, Kind: data.KindCLEVR, Original: id + ".original.png", Modified: id + ".modified.png",
			Width: 32, Height: 24, Seed: int64(i)}
		for k := range 5 {
			d := fmt.Sprintf("%s %s %s", []string{"large", "small"}[(i+k)%2], colors[(i+k)%8], shapes[(i+2*k)%3])
			it := data.Item{Original: d, Modified: d}
			if k == 1 || k == 3 {
				it.Modified = fmt.Sprintf("%s %s %s", []string{"small", "large"}[(i+k)%2], colors[(i+k+3)%8], shapes[(i+2*k+1)%3])
				p.Changes = append(p.Changes, data.Change{Kind: "replace", Before: d, After: it.Modified, Box: data.Box{X0: 4 * k, Y0: 4, X1: 4*k + 4, Y1: 8}})
			}
			p.Items = append(p.Items, it)
		}
		spyWritePNG(t, filepath.Join(dir, p.Original), color.RGBA{uint8(40 * i), 100, 100, 255})
		spyWritePNG(t, filepath.Join(dir, p.Modified), color.RGBA{uint8(40 * i), 180, 100, 255})
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		index.Write(b)
		index.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, data.IndexFile), []byte(index.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	pairs, err := data.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return pairs
}

// writeSolidPNG writes a w x h PNG of one colour (a test image whose content does not matter).
func writeSolidPNG(t *testing.T, path string, w, h int, c color.Color) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

func spyWritePNG(t *testing.T, path string, c color.Color) { writeSolidPNG(t, path, 32, 24, c) }

// spyFuncPolicy answers every sample with text(request, sample index) and counts its calls.
type spyFuncPolicy struct {
	text  func(r Request, k int) string
	calls int
	reqs  int
}

func (p *spyFuncPolicy) Complete(_ context.Context, reqs []Request) ([][]Completion, error) {
	p.calls++
	p.reqs += len(reqs)
	out := make([][]Completion, len(reqs))
	for i, r := range reqs {
		for k := range r.N {
			out[i] = append(out[i], Completion{Text: p.text(r, k)})
		}
	}
	return out, nil
}

// countingPolicy wraps a policy and counts Complete calls and requests.
type countingPolicy struct {
	Policy
	calls, reqs int
}

func (c *countingPolicy) Complete(ctx context.Context, reqs []Request) ([][]Completion, error) {
	c.calls++
	c.reqs += len(reqs)
	return c.Policy.Complete(ctx, reqs)
}

func spyTestEngine(t *testing.T, mutate func(*SpySettings)) *SpyEngine {
	t.Helper()
	s := DefaultSpySettings()
	s.Seed = 7
	s.BlankDir = t.TempDir()
	if mutate != nil {
		mutate(&s)
	}
	prompts, err := LoadSpyPrompts("")
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewSpyEngine(s, prompts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// playScored plays and scores games with a fresh RAE.
func playScored(t *testing.T, e *SpyEngine, pol Policy, pairs []*data.Pair, first int) []*SpyGame {
	t.Helper()
	games, _, err := e.Play(context.Background(), pol, pairs, first)
	if err != nil {
		t.Fatal(err)
	}
	rae := NewSpyRAE(e.Settings.Alpha)
	for _, g := range games {
		if err := g.Score(e.Settings, rae); err != nil {
			t.Fatal(err)
		}
	}
	return games
}
