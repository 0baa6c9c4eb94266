// Package data makes and reads the image pairs the games are played on: an original image and a
// modified copy with a small, exactly known difference.
//
// On disk every kind of pair (CLEVR scenes, charts, edited photos, user pairs) has one format: a
// folder of ID.original.png, ID.modified.png and ID.json (a Pair), plus index.jsonl with one Pair per
// line in ID order. The game engine only ever sees Pairs.
//
// Reading: ReadDir(dir) returns the pairs of a folder; HeldOut(id, seed, fraction) splits them.
//
// Making pairs (each writes a folder, each returns a Report):
//
//   - GenerateCLEVR(outDir, CLEVROptions): CLEVR-style scenes ray traced in Go (cube, sphere,
//     cylinder; 8 colours; rubber or metal; large or small), the modified scene changing K objects
//     by a rule (replace colour and shape, recolor, add, remove, move). RenderCLEVRPair(i, opts)
//     makes pair i in memory, for a trainer that wants pairs on the fly.
//   - GenerateCharts(outDir, ChartOptions): bar, line and pie charts drawn from random data with
//     the Go fonts; the modified chart has 1-2 values replaced. RenderChartPair(i, opts) in memory.
//   - PairsFromImages(srcDir, outDir, EditOptions): a folder of photos. NAME.EXT next to
//     NAME.edit.EXT, or a line of an ImgEdit-style manifest.jsonl, is a user pair; any other photo
//     gets automatic local edits (recolor, mirror, swap, remove, paste) recorded with their boxes.
//     SpyBlank makes the modified image blank (the spy-image=blank variant). Bad files are skipped
//     and listed in Report.Skipped. LoadImage decodes JPEG (EXIF orientation applied), PNG, WebP
//     and GIF within ImageLimits.
//
// Pair.Items name what a viewer can see in plain words ("large red metal cube at the back left",
// "2024 for Mar: 42", "region near the top-left, mostly green"); Pair.Changes say what differs and
// where (Box); Pair.Detail holds the full record (CLEVRDetail, ChartDetail or EditDetail).
//
// Guarantees: pair i depends only on the seed and i (or on the seed and the source file's name),
// never on the number of workers, so a seed gives byte-identical folders. Each pair's images are
// written before its JSON, each file atomically (temporary file and rename), and index.jsonl is
// rebuilt at the end, so a rerun after an interruption completes the folder without redoing the
// pairs already finished. In a CLEVR pair the pixels that differ lie in the change boxes, apart
// from the changed objects' shadows and their reflections in metal objects.
package data

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Kinds of pairs.
const (
	KindCLEVR = "clevr"
	KindChart = "chart"
	KindEdit  = "edit" // a single photo turned into a pair by an automatic local edit
	KindUser  = "user" // a pair the user gave (NAME.EXT + NAME.edit.EXT or a manifest line)
)

// Pair is one game input. Paths are relative to the folder that holds the pair's JSON.
type Pair struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Original string `json:"original"` // e.g. "000017.original.png"
	Modified string `json:"modified"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	Seed     int64  `json:"seed"`
	// Items lists what a viewer can name in the images, one entry per object, bar, slice or
	// region. Unchanged items have Original == Modified; a removed item has Modified == "", an
	// added one Original == "". The scripted policy plays from these descriptions.
	Items []Item `json:"items"`
	// Changes says exactly what differs, with the pixel box of each change.
	Changes []Change `json:"changes"`
	// Instruction is the edit instruction of a user pair, when the manifest gave one.
	Instruction string `json:"instruction,omitempty"`
	// Detail holds the kind-specific record: the CLEVR scenes, the chart data, the edit list.
	Detail json.RawMessage `json:"detail,omitempty"`

	dir string // folder the pair was read from; not serialised
}

// Item is one nameable thing in the pair, described in plain words ("large red metal cube").
type Item struct {
	Original string `json:"original"`
	Modified string `json:"modified"`
}

// Changed reports whether the item differs between the two images.
func (it Item) Changed() bool { return it.Original != it.Modified }

// Change is one difference between the images.
type Change struct {
	Kind   string `json:"kind"`   // e.g. "replace", "recolor", "add", "remove", "move", "value", "patch-swap"
	Before string `json:"before"` // description in the original ("" for an addition)
	After  string `json:"after"`  // description in the modified image ("" for a removal)
	Box    Box    `json:"box"`    // pixels that may differ, in the original's coordinates
}

// Box is a pixel rectangle [X0,X1) x [Y0,Y1).
type Box struct {
	X0 int `json:"x0"`
	Y0 int `json:"y0"`
	X1 int `json:"x1"`
	Y1 int `json:"y1"`
}

// OriginalPath and ModifiedPath are the image files of a pair read from disk.
func (p *Pair) OriginalPath() string { return filepath.Join(p.dir, p.Original) }
func (p *Pair) ModifiedPath() string { return filepath.Join(p.dir, p.Modified) }

// Dir is the folder the pair was read from ("" for a pair built in memory).
func (p *Pair) Dir() string { return p.dir }

// SetDir records where the pair's files live (used by writers and by in-memory pairs).
func (p *Pair) SetDir(dir string) { p.dir = dir }

// IndexFile is the name of a pair folder's index.
const IndexFile = "index.jsonl"

// ReadDir reads a pair folder: index.jsonl when present, else every *.json pair file. Pairs whose
// images are missing are an error naming the file: a game cannot be played on them.
func ReadDir(dir string) ([]*Pair, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("pair folder %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("pair folder %s: not a folder", dir)
	}
	var pairs []*Pair
	if b, err := os.ReadFile(filepath.Join(dir, IndexFile)); err == nil {
		for i, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			p := new(Pair)
			if err := json.Unmarshal([]byte(line), p); err != nil {
				return nil, fmt.Errorf("%s line %d: %w", filepath.Join(dir, IndexFile), i+1, err)
			}
			pairs = append(pairs, p)
		}
	} else {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		sort.Strings(files)
		for _, f := range files {
			if filepath.Base(f) == SettingsFile {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			p := new(Pair)
			if err := json.Unmarshal(b, p); err != nil {
				return nil, fmt.Errorf("%s: not a pair file: %w", f, err)
			}
			pairs = append(pairs, p)
		}
	}
	for _, p := range pairs {
		p.dir = dir
		if p.ID == "" || p.Original == "" || p.Modified == "" {
			return nil, fmt.Errorf("pair folder %s: pair %q lacks id, original or modified", dir, p.ID)
		}
		for _, f := range []string{p.OriginalPath(), p.ModifiedPath()} {
			st, err := os.Stat(f)
			switch {
			case err != nil:
				return nil, fmt.Errorf("pair %s: image %s: %w", p.ID, f, err)
			case !st.Mode().IsRegular():
				return nil, fmt.Errorf("pair %s: image %s is not a file", p.ID, f)
			case st.Size() == 0:
				return nil, fmt.Errorf("pair %s: image %s is empty (0 bytes; an interrupted copy?)", p.ID, f)
			}
		}
	}
	return pairs, nil
}

// HeldOut reports whether a pair belongs to the held-out (evaluation) split. The split is a seeded
// hash of the pair ID, so it is stable across runs and independent of the order pairs are read in.
func HeldOut(id string, seed int64, fraction float64) bool {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s", seed, id)
	return float64(h.Sum64()%1_000_000)/1_000_000 < fraction
}
