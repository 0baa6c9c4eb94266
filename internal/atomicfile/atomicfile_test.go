package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWriteReplacesWhole(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f.json")
	require.NoError(t, WriteFile(p, []byte("old")))
	require.NoError(t, WriteFile(p, []byte("new content")))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "new content", string(b))
}

func TestFailedWriteKeepsOldAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.json")
	require.NoError(t, WriteFile(p, []byte("old")))
	err := Write(p, func(w io.Writer) error {
		w.Write([]byte("half"))
		return errors.New("disk full")
	})
	require.ErrorContains(t, err, "disk full")
	require.ErrorContains(t, err, p)
	b, _ := os.ReadFile(p)
	require.Equal(t, "old", string(b))
	entries, _ := os.ReadDir(dir)
	require.Len(t, entries, 1, "temp file left behind")
}

func TestWriteIntoMissingFolder(t *testing.T) {
	err := WriteFile(filepath.Join(t.TempDir(), "no", "f"), []byte("x"))
	require.Error(t, err)
}

func TestWrittenFileIsNotPrivate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	require.NoError(t, WriteFile(p, []byte("x")))
	st, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), st.Mode().Perm())
}

func TestLinkReplacesWithoutCopy(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := WriteFile(src, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(dst, []byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := Link(src, dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "new" {
		t.Fatalf("after Link the file holds %q", b)
	}
	si, _ := os.Stat(src)
	di, _ := os.Stat(dst)
	if !os.SameFile(si, di) {
		t.Fatal("Link copied the file instead of linking it")
	}
	// Replacing the source later (atomically, a new file) leaves the link's content alone.
	if err := WriteFile(src, []byte("newer")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "new" {
		t.Fatalf("the linked file changed with its source: %q", b)
	}
	if err := Link(filepath.Join(dir, "missing"), dst); err == nil {
		t.Fatal("Link of a missing file succeeded")
	}
	if b, _ := os.ReadFile(dst); string(b) != "new" {
		t.Fatalf("a failed Link changed the file: %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
}
