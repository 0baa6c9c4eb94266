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
