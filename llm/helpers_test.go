package llm

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// Tests share one tiny model per family, written once per test binary.
var (
	tinyMu    sync.Mutex
	tinyFiles = map[string]testmodel.Files{}
	tinyDir   string // made and removed by TestMain
)

func tinyModelFiles(t testing.TB, family string) testmodel.Files {
	t.Helper()
	tinyMu.Lock()
	defer tinyMu.Unlock()
	if f, ok := tinyFiles[family]; ok {
		return f
	}
	f, err := testmodel.Write(tinyDir+"/"+family, testmodel.Config{Family: family, Seed: 1})
	require.NoError(t, err)
	tinyFiles[family] = f
	return f
}

// testOptions keeps llama.cpp to one thread: ggml's spin barriers collapse on a shared 2-core box.
func testOptions() Options {
	return Options{Threads: 1, ContextSize: 1024, BatchSize: 256, Parallel: 8, GPULayers: -1, Seed: 7}
}

func loadTiny(t testing.TB, family string, opts Options) *Model {
	t.Helper()
	f := tinyModelFiles(t, family)
	m, err := Load(f.Text, f.MMProj, opts)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

// chatPrompt formats and tokenizes a one-image chat prompt.
func chatPrompt(t testing.TB, m *Model, user string, image []byte) *Prompt {
	t.Helper()
	text, err := m.FormatChat([]Message{{"system", "You are a spy."}, {"user", MediaMarker() + "\n" + user}})
	require.NoError(t, err)
	p, err := m.Tokenize(text, image)
	require.NoError(t, err)
	return p
}
