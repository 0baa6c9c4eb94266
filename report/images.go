package report

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/vzlocal/vzlocal/internal/atomicfile"

	"github.com/rs/zerolog/log"
)

// maxImageBytes keeps the report folder small: a game image is a 320x240 render or a photo; a
// file larger than this is listed by path instead of copied.
const maxImageBytes = 8 << 20

// copyGameImages copies the images of the sampled games into outDir/images and points each
// ImageRef's Src at the copy, relative to the page. Paths in games.jsonl are absolute or relative
// to the folder training ran in; relative ones are tried against the run folder first, then the
// current folder. An image that cannot be found or is too large keeps an empty Src, and
// Problem says why.
func copyGameImages(run *Run, outDir string) error {
	imgDir := filepath.Join(outDir, "images")
	for gi := range run.Games.Games {
		g := &run.Games.Games[gi]
		for ii := range g.Images {
			ref := &g.Images[ii]
			src, ok := locate(run.Dir, ref.Path)
			if !ok {
				ref.Problem = "not found"
				log.Debug().Str("image", ref.Path).Msg("game image not found")
				continue
			}
			st, err := os.Stat(src)
			if err != nil {
				ref.Problem = err.Error()
				continue
			}
			if st.Size() > maxImageBytes {
				ref.Problem = fmt.Sprintf("not copied: %.1f MiB is over the %d MiB limit", float64(st.Size())/(1<<20), maxImageBytes>>20)
				continue
			}
			sum := sha1.Sum([]byte(src))
			name := hex.EncodeToString(sum[:6]) + "-" + filepath.Base(src)
			if err := os.MkdirAll(imgDir, 0o755); err != nil {
				return fmt.Errorf("report images: %w", err)
			}
			if err := copyFileAtomic(src, filepath.Join(imgDir, name)); err != nil {
				return err
			}
			ref.Src = "images/" + name
		}
	}
	return nil
}

func locate(runDir, p string) (string, bool) {
	candidates := []string{p}
	if !filepath.IsAbs(p) {
		candidates = []string{filepath.Join(runDir, p), p}
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			return c, true
		}
	}
	return "", false
}

func copyFileAtomic(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy image: %w", err)
	}
	defer in.Close()
	return atomicfile.Write(dst, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}
