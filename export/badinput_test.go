package export

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vzlocal/vzlocal/llm/testmodel"
)

func TestRunFolderWithoutAdapter(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model":"x.gguf"}`), 0o644))
	_, err := ResolveSource(dir, "", "")
	require.ErrorContains(t, err, "has no adapter.gguf")
	require.ErrorContains(t, err, dir)
}

func TestRunFolderConfig(t *testing.T) {
	files := tinyModel(t, testmodel.Config{Family: "llava", Seed: 1})
	run := runFolder(t, randomAdapter(t, files.Text, 2, 2, 1), files)
	src, err := ResolveSource(run, "", "")
	require.NoError(t, err)
	require.Equal(t, Source{Adapter: filepath.Join(run, AdapterFile), Model: files.Text, MMProj: files.MMProj, RunDir: run}, src)

	// Flags win over config.json.
	src, err = ResolveSource(run, files.Text, "")
	require.NoError(t, err)
	require.Equal(t, files.MMProj, src.MMProj)

	require.NoError(t, os.WriteFile(filepath.Join(run, "config.json"), []byte(`{"steps": 3}`), 0o644))
	_, err = ResolveSource(run, "", "")
	require.ErrorContains(t, err, `has no "model"`)
	require.NoError(t, os.WriteFile(filepath.Join(run, "config.json"), []byte(`{`), 0o644))
	_, err = ResolveSource(run, "", "")
	require.ErrorContains(t, err, "config.json: not a JSON object")

	// An adapter file alone needs --base.
	_, err = ResolveSource(filepath.Join(run, AdapterFile), "", "")
	require.ErrorContains(t, err, "pass --base")
}

// TestAdapterForAnotherBase: shape and architecture mismatches are found before any file is
// written, for every format.
func TestAdapterForAnotherBase(t *testing.T) {
	small := tinyModel(t, testmodel.Config{Family: "llava", Seed: 1})
	wide := tinyModel(t, testmodel.Config{Family: "llava", Seed: 1, Embd: 128})
	qwen := tinyModel(t, testmodel.Config{Family: "internvl", Seed: 1}) // qwen2 architecture
	adapter := filepath.Join(t.TempDir(), "adapter.gguf")
	require.NoError(t, randomAdapter(t, small.Text, 2, 2, 1).WriteGGUF(adapter, 0))

	for _, tc := range []struct {
		name string
		base testmodel.Files
		want string
	}{
		{"shape", wide, "another model"},
		{"arch", qwen, `architecture "llama"`},
	} {
		for _, format := range Formats {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				out := t.TempDir()
				src := Source{Adapter: adapter, Model: tc.base.Text, MMProj: tc.base.MMProj}
				_, err := Export(context.Background(), src, Options{Format: format, Out: out})
				require.ErrorContains(t, err, tc.want)
				requireEmptyDir(t, out)
			})
		}
	}
}

// CheckBase also covers what package lora's reader does not: a pair whose base tensor is absent
// or not 2-D.
func TestCheckBase(t *testing.T) {
	files := tinyModel(t, testmodel.Config{Family: "llava", Seed: 1, NoMMProj: true})
	ad := FromLoRA(randomAdapter(t, files.Text, 2, 2, 1))
	require.NoError(t, ad.CheckBase(files.Text))

	missing := *ad
	missing.Pairs = append([]Pair{}, ad.Pairs...)
	missing.Pairs[0].Base = "blk.9.attn_q.weight"
	require.ErrorContains(t, missing.CheckBase(files.Text), "does not have")

	norm := *ad
	norm.Pairs = append([]Pair{}, ad.Pairs...)
	norm.Pairs[0].Base = "blk.0.attn_norm.weight"
	require.ErrorContains(t, norm.CheckBase(files.Text), "norms")

	require.ErrorContains(t, ad.CheckBase(filepath.Join(t.TempDir(), "none.gguf")), "base model")
	notGGUF := filepath.Join(t.TempDir(), "x.gguf")
	require.NoError(t, os.WriteFile(notGGUF, []byte("not a model at all"), 0o644))
	require.ErrorContains(t, ad.CheckBase(notGGUF), "not a GGUF file")
}

func TestOllamaUnreachableAndBadName(t *testing.T) {
	files := tinyModel(t, testmodel.Config{Family: "llava", Seed: 1})
	run := runFolder(t, randomAdapter(t, files.Text, 2, 2, 1), files)
	src, err := ResolveSource(run, "", "")
	require.NoError(t, err)

	out := t.TempDir()
	// Port 1 on loopback: nothing listens there.
	_, err = Export(context.Background(), src, Options{Format: "ollama", Out: out, Create: "vz-test", Host: "127.0.0.1:1"})
	require.ErrorContains(t, err, "Ollama is not reachable at http://127.0.0.1:1")
	requireEmptyDir(t, out)

	_, err = Export(context.Background(), src, Options{Format: "ollama", Out: out, Create: "bad name!", Host: "127.0.0.1:1"})
	require.ErrorContains(t, err, `Ollama refuses the model name "bad name!"`)
	requireEmptyDir(t, out)

	_, err = Export(context.Background(), src, Options{Format: "gguf", Out: out, Create: "x"})
	require.ErrorContains(t, err, "--create works with --format ollama or merged")
}

// TestOllamaRefusesFamily: an M-RoPE family (qwen2vl + qwen2.5vl_merger) is refused for the
// ollama format before the adapter is even read, with the reason and the alternative.
func TestOllamaRefusesFamily(t *testing.T) {
	llava := tinyModel(t, testmodel.Config{Family: "llava", Seed: 1})
	qwen := tinyModel(t, testmodel.Config{Family: "qwen2vl", Seed: 1})
	adapter := filepath.Join(t.TempDir(), AdapterFile)
	require.NoError(t, randomAdapter(t, llava.Text, 2, 2, 1).WriteGGUF(adapter, 0))
	out := t.TempDir()
	_, err := Export(context.Background(), Source{Adapter: adapter, Model: qwen.Text, MMProj: qwen.MMProj}, Options{Format: "ollama", Out: out})
	require.ErrorIs(t, err, ErrOllamaFamily)
	require.ErrorContains(t, err, "M-RoPE")
	require.ErrorContains(t, err, "--format merged")
	requireEmptyDir(t, out)

	fc, err := CheckOllamaFamily(qwen.Text, qwen.MMProj)
	require.ErrorIs(t, err, ErrOllamaFamily)
	require.Equal(t, FamilyCheck{Arch: "qwen2vl", Projector: "qwen2.5vl_merger"}, fc)
	fc, err = CheckOllamaFamily(llava.Text, llava.MMProj)
	require.NoError(t, err)
	require.Equal(t, FamilyCheck{Arch: "llama", Projector: "mlp"}, fc)
}

// failingWriter fails like a full disk after limit bytes.
type failingWriter struct {
	w     io.Writer
	limit int
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		n, _ := f.w.Write(p[:f.limit])
		f.limit = 0
		return n, &os.PathError{Op: "write", Path: "(test)", Err: syscall.ENOSPC}
	}
	f.limit -= len(p)
	return f.w.Write(p)
}

// TestFullDisk: a write that fails part-way through any file of an export leaves no file behind,
// neither temporary files nor the files written before the failing one.
func TestFullDisk(t *testing.T) {
	files := tinyModel(t, testmodel.Config{Family: "llava", Seed: 1})
	run := runFolder(t, randomAdapter(t, files.Text, 2, 2, 1), files)
	src, err := ResolveSource(run, "", "")
	require.NoError(t, err)

	for _, failOn := range []string{OutModel, OutMMProj, OutModelfile} {
		t.Run(failOn, func(t *testing.T) {
			writeAtomic = func(path string, write func(io.Writer) error) error {
				if filepath.Base(path) != failOn {
					return realWriteAtomic(path, write)
				}
				return realWriteAtomic(path, func(w io.Writer) error { return write(&failingWriter{w: w, limit: 100}) })
			}
			t.Cleanup(func() { writeAtomic = realWriteAtomic })
			out := t.TempDir()
			_, err := Export(context.Background(), src, Options{Format: "merged", Out: out})
			require.Error(t, err)
			require.True(t, errors.Is(err, syscall.ENOSPC), "want ENOSPC in %v", err)
			require.ErrorContains(t, err, failOn)
			requireEmptyDir(t, out)
		})
	}
}

var realWriteAtomic = writeAtomic

func TestFormatsWriteTheirFiles(t *testing.T) {
	files := tinyModel(t, testmodel.Config{Family: "llava", Seed: 1})
	run := runFolder(t, randomAdapter(t, files.Text, 2, 2, 1), files)
	src, err := ResolveSource(run, "", "")
	require.NoError(t, err)
	for _, tc := range []struct {
		format string
		files  []string
	}{
		{"gguf", []string{OutAdapter}},
		{"peft", []string{OutPEFTWeights, OutPEFTConfig}},
		{"ollama", []string{OutAdapter, OutModelfile}},
		{"merged", []string{OutModel, OutMMProj, OutModelfile}},
	} {
		t.Run(tc.format, func(t *testing.T) {
			out := t.TempDir()
			res, err := Export(context.Background(), src, Options{Format: tc.format, Out: out})
			require.NoError(t, err)
			var got []string
			for _, f := range res.Files {
				got = append(got, filepath.Base(f))
			}
			require.Equal(t, tc.files, got)
			entries, err := os.ReadDir(out)
			require.NoError(t, err)
			require.Len(t, entries, len(tc.files), "stray files: %v", entries)
		})
	}
	_, err = Export(context.Background(), src, Options{Format: "onnx", Out: t.TempDir()})
	require.ErrorContains(t, err, "unknown --format")
	_, err = Export(context.Background(), src, Options{Format: "gguf", Out: t.TempDir(), DType: "q8_0"})
	require.ErrorContains(t, err, "--dtype")
}

// TestOutputOverInput: exporting into the run folder itself would replace the trained adapter.
func TestOutputOverInput(t *testing.T) {
	files := tinyModel(t, testmodel.Config{Family: "llava", Seed: 1})
	run := runFolder(t, randomAdapter(t, files.Text, 2, 2, 1), files)
	src, err := ResolveSource(run, "", "")
	require.NoError(t, err)
	before, err := os.ReadFile(src.Adapter)
	require.NoError(t, err)
	_, err = Export(context.Background(), src, Options{Format: "gguf", Out: run, DType: "f32"})
	require.ErrorContains(t, err, "would overwrite the input")
	after, err := os.ReadFile(src.Adapter)
	require.NoError(t, err)
	require.Equal(t, before, after)
	// merged into the base model's folder: text.gguf is not an output name, mmproj.gguf is.
	_, err = Export(context.Background(), src, Options{Format: "merged", Out: filepath.Dir(files.MMProj)})
	require.ErrorContains(t, err, "would overwrite the input")
}

// The merged export copies --mmproj next to the merged model: a file that is not a vision
// projector (empty, a text model, an adapter) is refused before anything is written.
func TestMergedRefusesNonProjectorMMProj(t *testing.T) {
	files := tinyModel(t, testmodel.Config{Family: "llava", Seed: 1})
	adapter := filepath.Join(t.TempDir(), "adapter.gguf")
	require.NoError(t, randomAdapter(t, files.Text, 2, 2, 1).WriteGGUF(adapter, 0))
	empty := filepath.Join(t.TempDir(), "empty.gguf")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	for name, mmproj := range map[string]string{"empty": empty, "text model": files.Text, "adapter": adapter} {
		t.Run(name, func(t *testing.T) {
			out := t.TempDir()
			src := Source{Adapter: adapter, Model: files.Text, MMProj: mmproj}
			_, err := Export(context.Background(), src, Options{Format: "merged", Out: out})
			require.ErrorContains(t, err, "mmproj")
			require.ErrorContains(t, err, mmproj)
			requireEmptyDir(t, out)
		})
	}
}

// An adapter given as the base model (the two paths swapped) is named as such, not reported as a
// model with a missing key.
func TestAdapterGivenAsBase(t *testing.T) {
	files := tinyModel(t, testmodel.Config{Family: "llava", Seed: 1, NoMMProj: true})
	adapter := filepath.Join(t.TempDir(), "adapter.gguf")
	require.NoError(t, randomAdapter(t, files.Text, 2, 2, 1).WriteGGUF(adapter, 0))
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			out := t.TempDir()
			_, err := Export(context.Background(), Source{Adapter: files.Text, Model: adapter}, Options{Format: format, Out: out})
			require.ErrorContains(t, err, adapter+" is a LoRA adapter")
			requireEmptyDir(t, out)
		})
	}
}
