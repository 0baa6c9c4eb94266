package export

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ollama/ollama/parser"
	"github.com/stretchr/testify/require"
)

// TestModelfileParsesInOllama writes a Modelfile and reads it back with Ollama's own parser, which
// must turn it into the create request CreateInOllama sends: two files, one adapter, the template
// and the stop words.
func TestModelfileParsesInOllama(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base dir") // a space, so the path must be quoted
	require.NoError(t, os.MkdirAll(base, 0o755))
	model, mmproj := filepath.Join(base, "text.gguf"), filepath.Join(base, "mmproj.gguf")
	for i, p := range []string{model, mmproj, filepath.Join(dir, OutAdapter)} {
		require.NoError(t, os.WriteFile(p, []byte{byte(i)}, 0o644))
	}
	ct, ok := ConvertChatTemplate("<|im_start|>")
	require.True(t, ok)
	text, err := Modelfile(OllamaModel{Model: model, MMProj: mmproj, Adapter: "./" + OutAdapter, Template: &ct})
	require.NoError(t, err)

	mf, err := parser.ParseFile(strings.NewReader(text))
	require.NoError(t, err, text)
	req, err := mf.CreateRequest(dir)
	require.NoError(t, err, text)
	require.Len(t, req.Files, 2, text)
	require.Len(t, req.Adapters, 1, text)
	for _, p := range []string{model, mmproj} {
		d, err := fileDigest(p)
		require.NoError(t, err)
		require.Equal(t, d, req.Files[p])
	}
	require.Equal(t, ct.Template, req.Template)
	require.Equal(t, ct.Stop, req.Parameters["stop"])
}

func TestModelfileGolden(t *testing.T) {
	ct, _ := ConvertChatTemplate("<|im_start|>")
	text, err := Modelfile(OllamaModel{Model: "/models/text.gguf", MMProj: "/models/mmproj.gguf", Adapter: "./adapter.gguf", Template: &ct})
	require.NoError(t, err)
	golden := filepath.Join("testdata", "Modelfile.chatml.golden")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		require.NoError(t, os.WriteFile(golden, []byte(text), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), text)
}

func TestModelfileRejectsUnquotable(t *testing.T) {
	_, err := Modelfile(OllamaModel{Model: "/a\"b.gguf"})
	require.ErrorContains(t, err, "cannot be written")
	_, err = Modelfile(OllamaModel{Model: "/m.gguf", Template: &ChatTemplate{Name: "x", Template: `a"""b`}})
	require.ErrorContains(t, err, `"""`)
}
