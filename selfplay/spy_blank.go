package selfplay

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"

	"github.com/vzlocal/vzlocal/internal/atomicfile"

	_ "image/jpeg" // pair images may be JPEG (user pairs)

	"github.com/vzlocal/vzlocal/data"
)

// blankImageFor returns the path of a uniform white image the size of the pair's original, for
// the spy-image=blank mode, writing it to dir on first use.
func blankImageFor(p *data.Pair, dir string) (string, error) {
	w, h := p.Width, p.Height
	if w <= 0 || h <= 0 {
		f, err := os.Open(p.OriginalPath())
		if err != nil {
			return "", fmt.Errorf("blank spy image: %w", err)
		}
		cfg, _, err := image.DecodeConfig(f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("blank spy image: size of %s: %w", p.OriginalPath(), err)
		}
		w, h = cfg.Width, cfg.Height
	}
	path := filepath.Join(dir, fmt.Sprintf("blank-%dx%d.png", w, h))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", fmt.Errorf("blank spy image: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("blank spy image: %w", err)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
		return "", fmt.Errorf("blank spy image: %w", err)
	}
	return path, nil
}
