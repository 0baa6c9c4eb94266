package data

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/draw"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// EditOptions configures pairs made from a folder of photos.
type EditOptions struct {
	Seed   int64
	Limits ImageLimits
	// Edits are the automatic edit kinds to draw from (default all of EditKinds).
	Edits []string
	// EditsPerPair is how many automatic edits one modified photo gets (default 1).
	EditsPerPair int
	// PairsPerImage is how many different pairs each single photo gives (default 1).
	PairsPerImage int
	// N caps the number of pairs (0: every source once, times PairsPerImage).
	N int
	// Manifest is an ImgEdit-style JSONL file of user pairs: {"source": ..., "edited": ...,
	// "instruction": ...} per line (common aliases such as src/target/prompt or img0/img1/sents are
	// accepted), paths relative to the manifest. Default: manifest.jsonl in the
	// source folder when present.
	Manifest string
	// SpyBlank makes every modified image a blank gray image (the spy-image=blank game variant).
	SpyBlank bool
	// DiffThreshold is the per-channel difference above which a pixel of a user pair counts as
	// edited (default 24): JPEG noise stays below it.
	DiffThreshold int
	Workers       int          `json:"-"`
	Progress      ProgressFunc `json:"-"`
}

func (o *EditOptions) withDefaults() (EditOptions, error) {
	c := *o
	c.Limits = c.Limits.withDefaults()
	if len(c.Edits) == 0 {
		c.Edits = EditKinds
	}
	if c.EditsPerPair == 0 {
		c.EditsPerPair = 1
	}
	if c.PairsPerImage == 0 {
		c.PairsPerImage = 1
	}
	if c.DiffThreshold == 0 {
		c.DiffThreshold = 24
	}
	switch {
	case c.N < 0:
		return c, fmt.Errorf("pairs: number of pairs must be positive (or 0 for all), got %d", c.N)
	case c.EditsPerPair < 1 || c.EditsPerPair > 5:
		return c, fmt.Errorf("pairs: edits per pair must be 1..5, got %d", c.EditsPerPair)
	case c.PairsPerImage < 1:
		return c, fmt.Errorf("pairs: pairs per image must be positive, got %d", c.PairsPerImage)
	case c.Limits.MinSide < 16 || c.Limits.MaxSide < c.Limits.MinSide:
		return c, fmt.Errorf("pairs: image side limits %d..%d invalid (16 <= min <= max)", c.Limits.MinSide, c.Limits.MaxSide)
	}
	for _, e := range c.Edits {
		if !slices.Contains(EditKinds, e) {
			return c, fmt.Errorf("pairs: unknown edit %q (%s)", e, strings.Join(EditKinds, ", "))
		}
	}
	return c, nil
}

// EditDetail is the Detail of a pair made from photos.
type EditDetail struct {
	Source      string       `json:"source"`           // source photo (path as found)
	Edited      string       `json:"edited,omitempty"` // the user's edited photo, for user pairs
	SourceSize  [2]int       `json:"source_size"`      // as stored in the file
	Orientation int          `json:"exif_orientation"` // EXIF orientation applied
	Scale       float64      `json:"scale"`            // output size / upright source size
	Edits       []EditRecord `json:"edits,omitempty"`  // automatic edits, in order
	Blank       bool         `json:"spy_blank,omitempty"`
}

// userPair is a source and its edited version given by the user.
type userPair struct {
	id, source, edited, instruction string
}

// PairsFromImages turns the photos in srcDir into pairs written to outDir: NAME.EXT with a
// NAME.edit.EXT beside it (or a manifest line) is a user pair; every other file is a single photo
// that gets automatic local edits. Bad files are skipped and listed in the report; it is an error
// when no file is usable.
func PairsFromImages(srcDir, outDir string, opts EditOptions) ([]*Pair, Report, error) {
	c, err := opts.withDefaults()
	if err != nil {
		return nil, Report{}, err
	}
	singles, users, err := scanSources(srcDir, c.Manifest)
	if err != nil {
		return nil, Report{}, err
	}
	// key names a pair's source exactly; the ID is its file-name-safe form, which can be shared
	type spec struct {
		id, key string
		make    func(id string) (*Pair, image.Image, image.Image, error)
	}
	var specs []spec
	for _, u := range users {
		specs = append(specs, spec{u.id, u.source + "\x00" + u.edited, func(string) (*Pair, image.Image, image.Image, error) {
			return makeUserPair(u, c)
		}})
	}
	for k := 0; k < c.PairsPerImage; k++ {
		for _, f := range singles {
			id, key := sanitizeID(filepath.Base(f)), filepath.Base(f) // singles are top-level files: the name alone, as for user pairs
			if c.PairsPerImage > 1 {
				id, key = fmt.Sprintf("%s-%d", id, k), fmt.Sprintf("%s\x00%d", key, k)
			}
			specs = append(specs, spec{id, key, func(id string) (*Pair, image.Image, image.Image, error) {
				return makeEditPair(f, id, c)
			}})
		}
	}
	// Names that sanitize alike ("猫.png" and "犬.png" are both __png, "a b.png" and "a_b.png"
	// both a_b_png) would write one pair's files over the other's: such IDs get a hash of the
	// exact name.
	count := map[string]int{}
	for _, sp := range specs {
		count[sp.id]++
	}
	var jobs []job
	for _, sp := range specs {
		id := sp.id
		if count[id] > 1 {
			h := fnv.New32a()
			h.Write([]byte(sp.key))
			id = fmt.Sprintf("%s-%08x", id, h.Sum32())
		}
		jobs = append(jobs, job{id: id, make: func() (*Pair, image.Image, image.Image, error) { return sp.make(id) }})
	}
	if c.N > 0 && c.N < len(jobs) {
		jobs = jobs[:c.N]
	}
	if len(jobs) == 0 {
		return nil, Report{}, fmt.Errorf("pairs: no files in %s", srcDir)
	}
	src, err := filepath.Abs(srcDir)
	if err != nil {
		return nil, Report{}, fmt.Errorf("source folder %s: %w", srcDir, err)
	}
	settings := struct {
		Source  string
		Options EditOptions
	}{src, c}
	settings.Options.N, settings.Options.Workers, settings.Options.Progress = 0, 0, nil
	rep, err := runJobs(outDir, "pairs", settings, jobs, c.Workers, c.Progress)
	if err != nil {
		return nil, rep, err
	}
	if rep.Total == 0 && len(rep.Skipped) > 0 {
		return nil, rep, fmt.Errorf("pairs: no usable image in %s (%d files skipped, first: %v)", srcDir, len(rep.Skipped), rep.Skipped[0].Err)
	}
	pairs, err := ReadDir(outDir)
	return pairs, rep, err
}

// imageExts are the extensions a user pair's edited file may have.
var imageExts = []string{".png", ".jpg", ".jpeg", ".webp", ".gif", ".PNG", ".JPG", ".JPEG", ".WEBP", ".GIF"}

// scanSources lists the single photos and the user pairs of a folder (top level), sorted.
func scanSources(dir, manifest string) ([]string, []userPair, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("source folder %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, nil, fmt.Errorf("source folder %s: not a folder", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("source folder %s: %w", dir, err)
	}
	if manifest == "" {
		if _, err := os.Stat(filepath.Join(dir, "manifest.jsonl")); err == nil {
			manifest = filepath.Join(dir, "manifest.jsonl")
		}
	}
	var users []userPair
	used := map[string]bool{}
	if manifest != "" {
		if users, err = readManifest(manifest); err != nil {
			return nil, nil, err
		}
		for _, u := range users {
			used[absPath(u.source)], used[absPath(u.edited)] = true, true
		}
		used[absPath(manifest)] = true
	}
	names := map[string]bool{}
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			names[e.Name()] = true
		}
	}
	var singles []string
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		if !names[name] || used[absPath(path)] {
			continue
		}
		ext := filepath.Ext(name)
		stem := strings.TrimSuffix(name, ext)
		if strings.HasSuffix(stem, ".edit") {
			if partnerOf(names, strings.TrimSuffix(stem, ".edit")) == "" {
				singles = append(singles, path) // an edit without a source: a photo like any other
			}
			continue
		}
		if ed := partnerOf(names, stem+".edit"); ed != "" {
			users = append(users, userPair{id: sanitizeID(name), source: path, edited: filepath.Join(dir, ed)})
			continue
		}
		singles = append(singles, path)
	}
	sort.Strings(singles)
	sort.Slice(users, func(i, j int) bool { return users[i].id < users[j].id })
	return singles, users, nil
}

// absPath is the key that matches a file named relative to --from with one named in a manifest.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

// partnerOf finds stem + an image extension among names.
func partnerOf(names map[string]bool, stem string) string {
	for _, ext := range imageExts {
		if names[stem+ext] {
			return stem + ext
		}
	}
	return ""
}

// readManifest reads an ImgEdit-style JSONL manifest.
func readManifest(path string) ([]userPair, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	defer f.Close()
	var out []userPair
	base := filepath.Dir(path)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		var raw map[string]any
		if err := json.Unmarshal([]byte(s), &raw); err != nil {
			return nil, fmt.Errorf("manifest %s line %d: %w", path, line, err)
		}
		m := struct{ ID, Source, Edited, Instruction string }{
			ID:          firstString(raw, "id", "uid", "key"),
			Source:      firstString(raw, manifestSourceKeys...),
			Edited:      firstString(raw, manifestEditedKeys...),
			Instruction: firstString(raw, "instruction", "prompt", "edit_prompt", "edit_instruction", "text", "sents"),
		}
		if m.Source == "" || m.Edited == "" {
			return nil, fmt.Errorf("manifest %s line %d: needs a source image (%s) and an edited image (%s)",
				path, line, strings.Join(manifestSourceKeys, ", "), strings.Join(manifestEditedKeys, ", "))
		}
		abs := func(p string) string {
			if filepath.IsAbs(p) {
				return p
			}
			return filepath.Join(base, p)
		}
		id := m.ID
		if id == "" {
			id = fmt.Sprintf("%s-%d", m.Source, line)
		}
		out = append(out, userPair{id: sanitizeID(id), source: abs(m.Source), edited: abs(m.Edited), instruction: m.Instruction})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("manifest %s line %d: longer than 1 MiB (one JSON object per line expected)", path, line+1)
		}
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	return out, nil
}

// Manifest field names: ours first, then those of common image-editing data sets.
var (
	manifestSourceKeys = []string{"source", "src", "input", "input_image", "source_image", "original", "img0"}
	manifestEditedKeys = []string{"edited", "edit", "target", "output", "output_image", "edited_image", "img1"}
)

// firstString is the first of keys that holds a string (or a list whose first item is one).
func firstString(m map[string]any, keys ...string) string {
	for _, k := range keys {
		switch v := m[k].(type) {
		case string:
			if v != "" {
				return v
			}
		case []any:
			if len(v) > 0 {
				if s, ok := v[0].(string); ok && s != "" {
					return s
				}
			}
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
	}
	return ""
}

// sanitizeID makes a file-name-safe pair ID from a path.
func sanitizeID(s string) string {
	s = strings.TrimLeft(s, "/\\")
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// pairRNG seeds a pair's randomness from the run seed and its ID, so the result does not depend
// on the order the workers take the files in.
func pairRNG(seed int64, id string) (*rand.Rand, int64) {
	h := fnv.New64a()
	h.Write([]byte(id))
	s := mixSeed(seed, int(h.Sum64()&0x7fffffff))
	return rand.New(rand.NewPCG(uint64(s), 0x65646974)), s
}

// makeEditPair loads one photo and applies automatic edits (or blanks it).
func makeEditPair(path, id string, c EditOptions) (*Pair, image.Image, image.Image, error) {
	li, err := LoadImage(path, c.Limits)
	if err != nil {
		return nil, nil, nil, err // a *SourceError
	}
	rng, seed := pairRNG(c.Seed, id)
	orig := li.Img
	mod := image.NewRGBA(orig.Bounds())
	d := EditDetail{Source: path, SourceSize: [2]int{li.SourceW, li.SourceH}, Orientation: li.Orientation, Scale: round3(li.Scale)}
	p := &Pair{ID: id, Kind: KindEdit, Seed: seed}
	w, h := orig.Bounds().Dx(), orig.Bounds().Dy()
	if c.SpyBlank {
		draw.Draw(mod, mod.Bounds(), image.NewUniform(gray128), image.Point{}, draw.Src)
		d.Blank = true
		p.Items = []Item{{Original: "the photo", Modified: "a blank gray image"}}
		p.Changes = []Change{{Kind: "blank", Before: "the photo", After: "a blank gray image", Box: Box{X1: w, Y1: h}}}
	} else {
		copy(mod.Pix, orig.Pix)
		for e := 0; e < c.EditsPerPair; e++ {
			kind := c.Edits[rng.IntN(len(c.Edits))]
			rec, items, changes, err := applyEdit(rng, mod, kind)
			if err != nil {
				return nil, nil, nil, &SourceError{Path: path, Err: err}
			}
			d.Edits = append(d.Edits, rec)
			p.Items = append(p.Items, items...)
			p.Changes = append(p.Changes, changes...)
		}
	}
	if p.Detail, err = json.Marshal(d); err != nil {
		return nil, nil, nil, err
	}
	return p, orig, mod, nil
}

// makeUserPair loads a user's source and edited photos, brings the edit to the source's size and
// finds where they differ.
func makeUserPair(u userPair, c EditOptions) (*Pair, image.Image, image.Image, error) {
	a, err := LoadImage(u.source, c.Limits)
	if err != nil {
		return nil, nil, nil, err
	}
	b, err := LoadImage(u.edited, ImageLimits{MinSide: c.Limits.MinSide, MaxSide: 1 << 30})
	if err != nil {
		return nil, nil, nil, err
	}
	orig, mod := a.Img, b.Img
	if mod.Bounds().Size() != orig.Bounds().Size() {
		mod = resizeTo(mod, orig.Bounds().Dx(), orig.Bounds().Dy())
	}
	_, seed := pairRNG(c.Seed, u.id)
	p := &Pair{ID: u.id, Kind: KindUser, Seed: seed, Instruction: u.instruction}
	if c.SpyBlank {
		mod = image.NewRGBA(orig.Bounds())
		draw.Draw(mod, mod.Bounds(), image.NewUniform(gray128), image.Point{}, draw.Src)
	}
	w, h := orig.Bounds().Dx(), orig.Bounds().Dy()
	regions := diffRegions(orig, mod, c.DiffThreshold, max(4, w*h/2000))
	if len(regions) == 0 {
		// no difference to play on: the same file twice, or an edit within compression noise
		return nil, nil, nil, &SourceError{Path: u.edited, Err: fmt.Errorf("does not differ from %s (no region where pixels differ by more than %d)", u.source, c.DiffThreshold)}
	}
	for _, r := range regions {
		where := regionWord(r, w, h)
		after := fmt.Sprintf("region %s, mostly %s (edited)", where, colorName(meanColor(mod, r)))
		if u.instruction != "" {
			after = fmt.Sprintf("region %s, mostly %s (edited: %s)", where, colorName(meanColor(mod, r)), u.instruction)
		}
		it := Item{Original: fmt.Sprintf("region %s, mostly %s", where, colorName(meanColor(orig, r))), Modified: after}
		p.Items = append(p.Items, it)
		p.Changes = append(p.Changes, Change{Kind: "edit", Before: it.Original, After: it.Modified, Box: r})
	}
	d := EditDetail{Source: u.source, Edited: u.edited, SourceSize: [2]int{a.SourceW, a.SourceH},
		Orientation: a.Orientation, Scale: round3(a.Scale), Blank: c.SpyBlank}
	if p.Detail, err = json.Marshal(d); err != nil {
		return nil, nil, nil, err
	}
	return p, orig, mod, nil
}

var gray128 = color.RGBA{128, 128, 128, 255}
