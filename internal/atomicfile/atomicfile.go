// Package atomicfile writes files so that a reader (or a resumed run after kill -9) sees either the
// old content or the new one, never a torn file: write a temp file in the same folder, fsync, rename.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Create replaces path with the file fill writes. fill gets the temporary *os.File itself, for
// writers that seek (GGUF). On any error the temporary file is removed and path is untouched.
func Create(path string, fill func(f *os.File) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = fill(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// CreateTemp makes the file private (0600); results are ordinary files.
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: close: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	syncDir(filepath.Dir(path))
	return nil
}

// Write replaces path with the bytes write produces.
func Write(path string, write func(w io.Writer) error) error {
	return Create(path, func(f *os.File) error { return write(f) })
}

// WriteFile is Write for bytes already in memory.
func WriteFile(path string, data []byte) error {
	return Create(path, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// syncDir makes a rename durable across a power cut; file systems that cannot sync folders are
// ignored.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	defer d.Close()
	_ = d.Sync()
}

// Link replaces path with a hard link to src, an already complete file: the same data under a
// second name, without writing it again. It fails (path untouched) where hard links are not
// possible, another file system say; callers then write the file.
func Link(src, path string) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".link-tmp")
	os.Remove(tmp) // left by a crash between link and rename
	if err := os.Link(src, tmp); err != nil {
		return fmt.Errorf("link %s to %s: %w", path, src, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("link %s to %s: %w", path, src, err)
	}
	syncDir(filepath.Dir(path))
	return nil
}
