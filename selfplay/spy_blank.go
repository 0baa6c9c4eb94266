package selfplay

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"

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
	if err := spyWriteAtomic(path, buf.Bytes()); err != nil {
		return "", fmt.Errorf("blank spy image: %w", err)
	}
	return path, nil
}

// spyWriteAtomic writes a file through a temporary file in the same folder and a rename, so a
// reader never sees half a file.
func spyWriteAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	// CreateTemp makes the file private; outputs are ordinary files.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
