package data

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// photo draws a textured test picture: a gradient with random rectangles and discs.
func photo(w, h int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 1))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(255 * x / w), uint8(255 * y / h), 120, 255})
		}
	}
	for k := 0; k < 40; k++ {
		c := color.RGBA{uint8(rng.IntN(256)), uint8(rng.IntN(256)), uint8(rng.IntN(256)), 255}
		x0, y0 := rng.IntN(w), rng.IntN(h)
		r := image.Rect(x0, y0, x0+4+rng.IntN(w/4), y0+4+rng.IntN(h/4))
		if k%2 == 0 {
			draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
		} else {
			fillCircle(img, float64(x0), float64(y0), float64(3+rng.IntN(w/8)), c)
		}
	}
	return img
}

func encodePNG(t *testing.T, img image.Image) []byte {
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

func encodeJPEG(t *testing.T, img image.Image) []byte {
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, img, &jpeg.Options{Quality: 95}))
	return b.Bytes()
}

func writeFile(t *testing.T, path string, b []byte) string {
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return path
}

// withEXIF inserts an APP1 EXIF block holding only the orientation tag after the JPEG's SOI.
func withEXIF(jpg []byte, orientation int, bo binary.ByteOrder) []byte {
	tiff := make([]byte, 8+2+12+4)
	if bo == binary.BigEndian {
		copy(tiff, "MM")
	} else {
		copy(tiff, "II")
	}
	bo.PutUint16(tiff[2:], 42)
	bo.PutUint32(tiff[4:], 8)
	bo.PutUint16(tiff[8:], 1)
	bo.PutUint16(tiff[10:], 0x0112)
	bo.PutUint16(tiff[12:], 3)
	bo.PutUint32(tiff[14:], 1)
	bo.PutUint16(tiff[18:], uint16(orientation))
	seg := append([]byte("Exif\x00\x00"), tiff...)
	app1 := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(app1[2:], uint16(len(seg)+2))
	out := append([]byte{}, jpg[:2]...)
	out = append(out, app1...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

func TestLoadImageEXIFOrientation(t *testing.T) {
	red, green, blue, yellow := color.RGBA{220, 20, 20, 255}, color.RGBA{20, 200, 20, 255}, color.RGBA{20, 20, 220, 255}, color.RGBA{230, 230, 20, 255}
	src := image.NewRGBA(image.Rect(0, 0, 96, 64))
	for _, q := range []struct {
		r image.Rectangle
		c color.RGBA
	}{{image.Rect(0, 0, 48, 32), red}, {image.Rect(48, 0, 96, 32), green}, {image.Rect(0, 32, 48, 64), blue}, {image.Rect(48, 32, 96, 64), yellow}} {
		draw.Draw(src, q.r, image.NewUniform(q.c), image.Point{}, draw.Src)
	}
	// the displayed image's quadrants TL, TR, BL, BR for each EXIF orientation (EXIF 2.3, 4.6.4)
	want := map[int][4]color.RGBA{
		1: {red, green, blue, yellow}, 2: {green, red, yellow, blue}, 3: {yellow, blue, green, red},
		4: {blue, yellow, red, green}, 5: {red, blue, green, yellow}, 6: {blue, red, yellow, green},
		7: {yellow, green, blue, red}, 8: {green, yellow, red, blue},
	}
	jpg := encodeJPEG(t, src)
	dir := t.TempDir()
	for o := 1; o <= 8; o++ {
		for _, bo := range []binary.ByteOrder{binary.BigEndian, binary.LittleEndian} {
			path := writeFile(t, filepath.Join(dir, fmt.Sprintf("o%d-%v.jpg", o, bo)), withEXIF(jpg, o, bo))
			li, err := LoadImage(path, ImageLimits{MinSide: 16})
			require.NoError(t, err)
			require.Equal(t, o, li.Orientation)
			w, h := li.Img.Bounds().Dx(), li.Img.Bounds().Dy()
			if o >= 5 {
				require.Equal(t, [2]int{64, 96}, [2]int{w, h}, "orientation %d swaps the sides", o)
			} else {
				require.Equal(t, [2]int{96, 64}, [2]int{w, h})
			}
			for qi, p := range []image.Point{{w / 4, h / 4}, {3 * w / 4, h / 4}, {w / 4, 3 * h / 4}, {3 * w / 4, 3 * h / 4}} {
				c := want[o][qi]
				require.Less(t, colorDist(li.Img, p.X, p.Y, [3]uint8{c.R, c.G, c.B}), 30.0, "orientation %d quadrant %d", o, qi)
			}
		}
	}
	// broken EXIF blocks fall back to "upright" rather than rejecting the photo
	for _, b := range [][]byte{withEXIF(jpg, 9, binary.BigEndian), append(jpg[:2:2], 0xFF, 0xE1, 0x00, 0x09, 'E', 'x', 'i', 'f', 0, 0, 'M')} {
		require.Equal(t, 1, jpegOrientation(b))
	}
}

func TestLoadImageFormatsAndDownscale(t *testing.T) {
	li, err := LoadImage("testdata/blue-purple-pink.webp", ImageLimits{})
	require.NoError(t, err)
	require.Equal(t, "webp", li.Format)
	require.Equal(t, image.Pt(150, 100), li.Img.Bounds().Size())

	dir := t.TempDir()
	big := writeFile(t, filepath.Join(dir, "big.png"), encodePNG(t, photo(1500, 1000, 1)))
	li, err = LoadImage(big, ImageLimits{MaxSide: 300})
	require.NoError(t, err)
	require.Equal(t, image.Pt(300, 200), li.Img.Bounds().Size())
	require.InDelta(t, 0.2, li.Scale, 1e-9)
}

// TestLoadImageBadInputs: every bad file gives a *SourceError naming the file and the problem.
func TestLoadImageBadInputs(t *testing.T) {
	dir := t.TempDir()
	pngBytes := encodePNG(t, photo(120, 90, 2))
	jpgBytes := encodeJPEG(t, photo(120, 90, 2))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "folder.png"), 0o755))
	cases := []struct {
		name, file string
		body       []byte
		want       string
	}{
		{"zero bytes", "empty.jpg", []byte{}, "empty file"},
		{"text", "notes.png", []byte("these are not pixels\n"), "not an image"},
		{"truncated png", "cut.png", pngBytes[:len(pngBytes)/2], "truncated png"},
		{"truncated jpeg", "cut.jpg", jpgBytes[:len(jpgBytes)/2], "jpeg"},
		{"png header only", "head.png", pngBytes[:40], "png"},
		{"too small", "tiny.png", encodePNG(t, photo(40, 30, 3)), "smaller than the minimum side 64"},
		{"a folder", "folder.png", nil, "unreadable"},
		{"missing", "missing.webp", nil, "unreadable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.file)
			if tc.body != nil {
				writeFile(t, path, tc.body)
			}
			_, err := LoadImage(path, ImageLimits{})
			require.Error(t, err)
			var se *SourceError
			require.True(t, errors.As(err, &se), "error is a *SourceError: %v", err)
			require.Contains(t, err.Error(), path)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// sourceFolder makes a folder with good photos of each format and every kind of bad file.
func sourceFolder(t *testing.T) string {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.png"), encodePNG(t, photo(200, 150, 10)))
	writeFile(t, filepath.Join(dir, "b.jpg"), encodeJPEG(t, photo(180, 160, 11)))
	webp, err := os.ReadFile("testdata/blue-purple-pink.webp")
	require.NoError(t, err)
	writeFile(t, filepath.Join(dir, "c.webp"), webp)
	writeFile(t, filepath.Join(dir, "empty.jpg"), nil)
	writeFile(t, filepath.Join(dir, "readme.txt"), []byte("hello"))
	writeFile(t, filepath.Join(dir, "tiny.png"), encodePNG(t, photo(30, 30, 12)))
	return dir
}

func TestPairsFromImagesAutomaticEdits(t *testing.T) {
	src := sourceFolder(t)
	for _, kind := range EditKinds {
		t.Run(kind, func(t *testing.T) {
			out := t.TempDir()
			pairs, rep, err := PairsFromImages(src, out, EditOptions{Seed: 4, Edits: []string{kind}, Workers: 2})
			require.NoError(t, err)
			require.Len(t, pairs, 3)
			require.Len(t, rep.Skipped, 3, "empty.jpg, readme.txt and tiny.png are skipped")
			for _, s := range rep.Skipped {
				require.Contains(t, []string{"empty.jpg", "readme.txt", "tiny.png"}, filepath.Base(s.Path))
			}
			for _, p := range pairs {
				require.Equal(t, KindEdit, p.Kind)
				var d EditDetail
				require.NoError(t, json.Unmarshal(p.Detail, &d))
				require.Len(t, d.Edits, 1)
				require.Equal(t, kind, d.Edits[0].Kind)
				orig, mod := readRGBA(t, p.OriginalPath()), readRGBA(t, p.ModifiedPath())
				requireDiffInsideBoxes(t, p, orig, mod)
				for _, c := range p.Changes {
					require.NotEqual(t, c.Before, c.After)
					n := 0
					for y := c.Box.Y0; y < c.Box.Y1; y++ {
						for x := c.Box.X0; x < c.Box.X1; x++ {
							if pixelDiff(orig, mod, x, y) > 0 {
								n++
							}
						}
					}
					require.Positive(t, n, "%s: the %s box changes pixels", p.ID, kind)
				}
			}
		})
	}
}

func readRGBA(t *testing.T, path string) *image.RGBA {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	return toRGBA(img)
}

func requireDiffInsideBoxes(t *testing.T, p *Pair, a, b *image.RGBA) {
	t.Helper()
	require.Equal(t, a.Bounds(), b.Bounds())
	for y := 0; y < a.Bounds().Dy(); y++ {
		for x := 0; x < a.Bounds().Dx(); x++ {
			if pixelDiff(a, b, x, y) == 0 {
				continue
			}
			inside := false
			for _, c := range p.Changes {
				inside = inside || (x >= c.Box.X0 && x < c.Box.X1 && y >= c.Box.Y0 && y < c.Box.Y1)
			}
			require.True(t, inside, "%s: pixel (%d,%d) differs outside the change boxes", p.ID, x, y)
		}
	}
}

func TestPairsFromImagesSameSeedSameBytes(t *testing.T) {
	src := sourceFolder(t)
	a, b := t.TempDir(), t.TempDir()
	_, _, err := PairsFromImages(src, a, EditOptions{Seed: 9, PairsPerImage: 2, EditsPerPair: 2, Workers: 1})
	require.NoError(t, err)
	_, _, err = PairsFromImages(src, b, EditOptions{Seed: 9, PairsPerImage: 2, EditsPerPair: 2, Workers: 3})
	require.NoError(t, err)
	requireSameFiles(t, a, b)
}

func TestPairsFromImagesUserPairsAndManifest(t *testing.T) {
	dir := t.TempDir()
	base := photo(160, 120, 20)
	edited := image.NewRGBA(base.Bounds())
	copy(edited.Pix, base.Pix)
	draw.Draw(edited, image.Rect(30, 40, 70, 90), image.NewUniform(color.RGBA{255, 0, 255, 255}), image.Point{}, draw.Src)
	writeFile(t, filepath.Join(dir, "cat.png"), encodePNG(t, base))
	writeFile(t, filepath.Join(dir, "cat.edit.png"), encodePNG(t, edited))
	// a manifest pair whose edit is twice the size: it is brought to the source's size
	sub := filepath.Join(dir, "imgedit")
	require.NoError(t, os.Mkdir(sub, 0o755))
	// (a smooth picture: resampling a sharp-edged one back and forth changes its edges too)
	smooth := image.NewRGBA(image.Rect(0, 0, 160, 120))
	for y := 0; y < 120; y++ {
		for x := 0; x < 160; x++ {
			smooth.Set(x, y, color.RGBA{uint8(x), uint8(2 * y), 200, 255})
		}
	}
	big := resizeTo(smooth, 320, 240)
	draw.Draw(big, image.Rect(200, 20, 300, 100), image.NewUniform(color.RGBA{0, 0, 0, 255}), image.Point{}, draw.Src)
	writeFile(t, filepath.Join(sub, "src.png"), encodePNG(t, smooth))
	writeFile(t, filepath.Join(sub, "dst.png"), encodePNG(t, big))
	writeFile(t, filepath.Join(dir, "manifest.jsonl"), []byte(`{"img0": "imgedit/src.png", "img1": "imgedit/dst.png", "sents": ["add a black square"], "uid": 7}`+"\n"))

	pairs, rep, err := PairsFromImages(dir, t.TempDir(), EditOptions{})
	require.NoError(t, err)
	require.Empty(t, rep.Skipped)
	require.Len(t, pairs, 2)
	byInstr := map[string]*Pair{}
	for _, p := range pairs {
		require.Equal(t, KindUser, p.Kind)
		byInstr[p.Instruction] = p
	}
	cat := byInstr[""]
	require.Len(t, cat.Changes, 1)
	require.Equal(t, Box{X0: 30, Y0: 40, X1: 70, Y1: 90}, cat.Changes[0].Box)
	m := byInstr["add a black square"]
	require.NotNil(t, m)
	require.Len(t, m.Changes, 1)
	b := m.Changes[0].Box
	require.InDelta(t, 100, b.X0, 2)
	require.InDelta(t, 150, b.X1, 2)
	require.InDelta(t, 10, b.Y0, 2)
	require.InDelta(t, 50, b.Y1, 2)
	require.Contains(t, m.Items[0].Modified, "add a black square")
}

func TestPairsFromImagesSpyBlank(t *testing.T) {
	pairs, _, err := PairsFromImages(sourceFolder(t), t.TempDir(), EditOptions{SpyBlank: true})
	require.NoError(t, err)
	for _, p := range pairs {
		mod := readRGBA(t, p.ModifiedPath())
		for i := 0; i < len(mod.Pix); i += 4 {
			require.Equal(t, []uint8{128, 128, 128, 255}, mod.Pix[i:i+4])
		}
		require.Equal(t, "blank", p.Changes[0].Kind)
		require.Equal(t, Box{X1: p.Width, Y1: p.Height}, p.Changes[0].Box)
	}
}

func TestPairsFromImagesBadInput(t *testing.T) {
	onlyBad := t.TempDir()
	writeFile(t, filepath.Join(onlyBad, "zero.png"), nil)
	writeFile(t, filepath.Join(onlyBad, "text.jpg"), []byte("no"))
	_, rep, err := PairsFromImages(onlyBad, t.TempDir(), EditOptions{})
	require.ErrorContains(t, err, "no usable image")
	require.ErrorContains(t, err, "2 files skipped")
	require.Len(t, rep.Skipped, 2)

	_, _, err = PairsFromImages(t.TempDir(), t.TempDir(), EditOptions{})
	require.ErrorContains(t, err, "no files")
	_, _, err = PairsFromImages(filepath.Join(onlyBad, "nope"), t.TempDir(), EditOptions{})
	require.ErrorContains(t, err, "source folder")
	_, _, err = PairsFromImages(onlyBad, t.TempDir(), EditOptions{N: -1})
	require.ErrorContains(t, err, "must be positive")
	_, _, err = PairsFromImages(onlyBad, t.TempDir(), EditOptions{Edits: []string{"blur"}})
	require.ErrorContains(t, err, "unknown edit")

	src := sourceFolder(t)
	file := filepath.Join(t.TempDir(), "f")
	writeFile(t, file, []byte("x"))
	_, _, err = PairsFromImages(src, file, EditOptions{})
	require.ErrorContains(t, err, "output folder "+file)

	badManifest := t.TempDir()
	writeFile(t, filepath.Join(badManifest, "manifest.jsonl"), []byte("{\"source\": \"a.png\"}\n"))
	_, _, err = PairsFromImages(badManifest, t.TempDir(), EditOptions{})
	require.ErrorContains(t, err, "line 1")
	require.ErrorContains(t, err, "edited image")
	require.True(t, strings.Contains(err.Error(), "manifest.jsonl"))
	writeFile(t, filepath.Join(badManifest, "manifest.jsonl"), []byte("{\"source\": \"a.png\", \"edited\": \"b.png\"}\n{oops\n"))
	_, _, err = PairsFromImages(badManifest, t.TempDir(), EditOptions{})
	require.ErrorContains(t, err, "line 2")
}

// debianPhotos are real WebP pictures from the Debian package gnome-backgrounds (the test skips
// when it is not installed).
var debianPhotos = []string{"/usr/share/backgrounds/gnome/wood-d.webp", "/usr/share/backgrounds/gnome/symbolic-l.webp"}

func TestPairsFromDebianPackagePhotos(t *testing.T) {
	src := t.TempDir()
	for _, f := range debianPhotos {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Skipf("gnome-backgrounds not installed: %v", err)
		}
		writeFile(t, filepath.Join(src, filepath.Base(f)), b)
	}
	pairs, rep, err := PairsFromImages(src, t.TempDir(), EditOptions{Seed: 2, EditsPerPair: 2, Limits: ImageLimits{MaxSide: 512}})
	require.NoError(t, err)
	require.Empty(t, rep.Skipped)
	require.Len(t, pairs, len(debianPhotos))
	for _, p := range pairs {
		requireDiffInsideBoxes(t, p, readRGBA(t, p.OriginalPath()), readRGBA(t, p.ModifiedPath()))
	}
}

func TestManifestFilesAreNotSingles(t *testing.T) {
	dir := t.TempDir()
	base := photo(120, 90, 30)
	edited := image.NewRGBA(base.Bounds())
	copy(edited.Pix, base.Pix)
	draw.Draw(edited, image.Rect(10, 10, 40, 40), image.NewUniform(color.RGBA{0, 255, 0, 255}), image.Point{}, draw.Src)
	writeFile(t, filepath.Join(dir, "before.png"), encodePNG(t, base))
	writeFile(t, filepath.Join(dir, "after.png"), encodePNG(t, edited))
	manifest := writeFile(t, filepath.Join(t.TempDir(), "edits.jsonl"),
		[]byte(fmt.Sprintf(`{"id": "e1", "source": %q, "edited": %q, "instruction": "paint a green square"}`+"\n",
			filepath.Join(dir, "before.png"), filepath.Join(dir, "after.png"))))
	pairs, _, err := PairsFromImages(dir, t.TempDir(), EditOptions{Manifest: manifest})
	require.NoError(t, err)
	require.Len(t, pairs, 1, "the manifest's files are one user pair, not two photos")
	require.Equal(t, "e1", pairs[0].ID)
	require.Equal(t, KindUser, pairs[0].Kind)
	require.Equal(t, Box{X0: 10, Y0: 10, X1: 40, Y1: 40}, pairs[0].Changes[0].Box)
}

// A photo's pair ID (its file names and its random edits) comes from the photo's name, not from
// how the source folder was spelled on the command line ("photos", "photos/", "./photos").
func TestPairsFromImagesIDIgnoresFolderSpelling(t *testing.T) {
	src := sourceFolder(t)
	a, b := t.TempDir(), t.TempDir()
	pa, _, err := PairsFromImages(src, a, EditOptions{Seed: 4})
	require.NoError(t, err)
	pb, _, err := PairsFromImages(src+string(filepath.Separator)+".", b, EditOptions{Seed: 4})
	require.NoError(t, err)
	require.Len(t, pb, len(pa))
	for i := range pa {
		require.Equal(t, pa[i].ID, pb[i].ID)
		for _, f := range []string{pa[i].Original, pa[i].Modified} {
			x, err := os.ReadFile(filepath.Join(a, f))
			require.NoError(t, err)
			y, err := os.ReadFile(filepath.Join(b, f))
			require.NoError(t, err)
			require.True(t, bytes.Equal(x, y), "%s differs", f)
		}
	}
	require.Equal(t, "a_png", pa[0].ID)
}

// File names that sanitize to one ID (non-Latin names of one length, "a b" and "a_b") still give
// one pair each, with distinct files.
func TestPairsFromImagesNamesThatSanitizeAlike(t *testing.T) {
	src := t.TempDir()
	for i, name := range []string{"猫.png", "犬.png", "a b.png", "a_b.png"} {
		writeFile(t, filepath.Join(src, name), encodePNG(t, photo(120, 100, uint64(30+i))))
	}
	writeFile(t, filepath.Join(src, "鳥.png"), encodePNG(t, photo(120, 100, 40)))
	writeFile(t, filepath.Join(src, "鳥.edit.png"), encodePNG(t, photo(120, 100, 41)))
	writeFile(t, filepath.Join(src, "魚.png"), encodePNG(t, photo(120, 100, 42)))
	writeFile(t, filepath.Join(src, "魚.edit.png"), encodePNG(t, photo(120, 100, 43)))
	out := t.TempDir()
	pairs, rep, err := PairsFromImages(src, out, EditOptions{Seed: 1})
	require.NoError(t, err)
	require.Empty(t, rep.Skipped)
	require.Len(t, pairs, 6)
	ids, sources := map[string]bool{}, map[string]bool{}
	for _, p := range pairs {
		require.False(t, ids[p.ID], "ID %s used twice", p.ID)
		ids[p.ID] = true
		var d EditDetail
		require.NoError(t, json.Unmarshal(p.Detail, &d))
		sources[d.Source] = true
	}
	require.Len(t, sources, 6)
	// the same folder gives the same IDs again
	again, _, err := PairsFromImages(src, t.TempDir(), EditOptions{Seed: 1})
	require.NoError(t, err)
	for i := range pairs {
		require.Equal(t, pairs[i].ID, again[i].ID)
	}
}

// A manifest line too long to be one pair (a data set's whole JSON on one line, a binary file)
// is an error naming the manifest, the line and the problem.
func TestManifestLineTooLong(t *testing.T) {
	dir := t.TempDir()
	long := `{"source": "a.png", "edited": "b.png"}` + "\n" + `{"instruction": "` + strings.Repeat("x", 2<<20) + `"}` + "\n"
	writeFile(t, filepath.Join(dir, "manifest.jsonl"), []byte(long))
	_, _, err := PairsFromImages(dir, t.TempDir(), EditOptions{})
	require.Error(t, err)
	require.Contains(t, err.Error(), filepath.Join(dir, "manifest.jsonl")+" line 2")
	require.Contains(t, err.Error(), "longer than 1 MiB")
}

// A user pair whose edited image does not differ from the source (the same photo saved twice)
// has nothing to play on: it is skipped with the reason, not written as a pair without changes.
func TestUserPairWithoutDifferenceIsSkipped(t *testing.T) {
	dir := t.TempDir()
	img := encodePNG(t, photo(120, 100, 50))
	writeFile(t, filepath.Join(dir, "same.png"), img)
	edited := writeFile(t, filepath.Join(dir, "same.edit.png"), img)
	writeFile(t, filepath.Join(dir, "other.png"), encodePNG(t, photo(120, 100, 51)))
	pairs, rep, err := PairsFromImages(dir, t.TempDir(), EditOptions{})
	require.NoError(t, err)
	require.Len(t, pairs, 1)
	require.Equal(t, KindEdit, pairs[0].Kind)
	require.Len(t, rep.Skipped, 1)
	require.Equal(t, edited, rep.Skipped[0].Path)
	require.ErrorContains(t, rep.Skipped[0].Err, "does not differ")
}
