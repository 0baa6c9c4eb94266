package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	_ "image/gif" // registered decoders: the formats users drop into a folder
	_ "image/jpeg"
	_ "image/png"
	"io"
	"os"
	"strings"

	xdraw "golang.org/x/image/draw"
	_ "golang.org/x/image/webp"
)

// ImageLimits bounds the photos a run accepts.
type ImageLimits struct {
	MinSide int // smaller images are rejected (default 64)
	MaxSide int // larger images are downscaled so their longer side is MaxSide (default 1024)
}

func (l ImageLimits) withDefaults() ImageLimits {
	if l.MinSide <= 0 {
		l.MinSide = 64
	}
	if l.MaxSide <= 0 {
		l.MaxSide = 1024
	}
	return l
}

// LoadedImage is a decoded photo, upright and within the size limits.
type LoadedImage struct {
	Img         *image.RGBA
	Format      string // jpeg, png, webp, gif
	SourceW     int    // size as stored in the file, before orientation and scaling
	SourceH     int
	Orientation int     // EXIF orientation applied (1 = none)
	Scale       float64 // output size / upright source size
}

// LoadImage decodes a JPEG, PNG, WebP or GIF file, turns it upright by its EXIF orientation and
// downscales it to the limits. Every error is a *SourceError naming the file and the problem.
func LoadImage(path string, lim ImageLimits) (*LoadedImage, error) {
	lim = lim.withDefaults()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &SourceError{Path: path, Err: fmt.Errorf("unreadable: %w", err)}
	}
	if len(b) == 0 {
		return nil, &SourceError{Path: path, Err: errors.New("empty file (0 bytes)")}
	}
	// The header first: the decoders allocate the whole image before reading a pixel, so a
	// corrupt header or a decompression bomb would cost gigabytes before it failed.
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, decodeError(path, format, err)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > MaxPixels {
		return nil, &SourceError{Path: path, Err: fmt.Errorf("image is %dx%d (%d megapixels), more than the %d-megapixel limit: corrupt, or downscale it first",
			cfg.Width, cfg.Height, px/1_000_000, MaxPixels/1_000_000)}
	}
	src, format, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, decodeError(path, format, err)
	}
	li := &LoadedImage{Format: format, SourceW: src.Bounds().Dx(), SourceH: src.Bounds().Dy(), Orientation: 1, Scale: 1}
	if min(li.SourceW, li.SourceH) < lim.MinSide {
		return nil, &SourceError{Path: path, Err: fmt.Errorf("image is %dx%d, smaller than the minimum side %d", li.SourceW, li.SourceH, lim.MinSide)}
	}
	img := toRGBA(src)
	if format == "jpeg" {
		li.Orientation = jpegOrientation(b)
		img = orient(img, li.Orientation)
	}
	li.Img, li.Scale = fitMaxSide(img, lim.MaxSide)
	return li, nil
}

// MaxPixels is the largest image LoadImage decodes (200 megapixels, above any camera's photo).
const MaxPixels = 200_000_000

// decodeError says what is wrong with a file the image decoders refused.
func decodeError(path, format string, err error) error {
	switch {
	case errors.Is(err, image.ErrFormat):
		return &SourceError{Path: path, Err: errors.New("not an image (JPEG, PNG, WebP or GIF expected)")}
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || strings.Contains(fmt.Sprint(err), "not enough pixel data"):
		return &SourceError{Path: path, Err: fmt.Errorf("truncated %s image: %w", format, err)}
	default:
		return &SourceError{Path: path, Err: fmt.Errorf("corrupt %s image: %w", format, err)}
	}
}

func toRGBA(src image.Image) *image.RGBA {
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), src, b.Min, draw.Src)
	return dst
}

// orient applies an EXIF orientation so the image is upright.
func orient(src *image.RGBA, o int) *image.RGBA {
	if o <= 1 || o > 8 {
		return src
	}
	w, h := src.Bounds().Dx(), src.Bounds().Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	dst := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := 0; y < dh; y++ {
		for x := 0; x < dw; x++ {
			var sx, sy int
			switch o {
			case 2:
				sx, sy = w-1-x, y
			case 3:
				sx, sy = w-1-x, h-1-y
			case 4:
				sx, sy = x, h-1-y
			case 5:
				sx, sy = y, x
			case 6:
				sx, sy = y, h-1-x
			case 7:
				sx, sy = w-1-y, h-1-x
			case 8:
				sx, sy = w-1-y, x
			}
			copy(dst.Pix[dst.PixOffset(x, y):][:4], src.Pix[src.PixOffset(sx, sy):][:4])
		}
	}
	return dst
}

// fitMaxSide downscales (Catmull-Rom) so the longer side is at most maxSide.
func fitMaxSide(img *image.RGBA, maxSide int) (*image.RGBA, float64) {
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	if max(w, h) <= maxSide {
		return img, 1
	}
	s := float64(maxSide) / float64(max(w, h))
	dw, dh := max(1, int(float64(w)*s+0.5)), max(1, int(float64(h)*s+0.5))
	return resizeTo(img, dw, dh), s
}

func resizeTo(img *image.RGBA, w, h int) *image.RGBA {
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	xdraw.CatmullRom.Scale(dst, dst.Bounds(), img, img.Bounds(), xdraw.Src, nil)
	return dst
}
