package llm

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/log"
	"github.com/stretchr/testify/require"
)

// llama.cpp's own log reaches zerolog at debug level, and its error lines explain a failed load.
func TestLlamaLogRouted(t *testing.T) {
	var buf bytes.Buffer
	saved, level := log.Logger, zerolog.GlobalLevel()
	log.Logger = zerolog.New(&buf)
	zerolog.SetGlobalLevel(zerolog.DebugLevel)
	defer func() { log.Logger = saved; zerolog.SetGlobalLevel(level) }()

	f := tinyModelFiles(t, "llava")
	m, err := Load(f.Text, "", testOptions())
	require.NoError(t, err)
	m.Close()
	require.Contains(t, buf.String(), `"level":"debug","from":"llama.cpp"`)
	require.Contains(t, buf.String(), "llama_model_loader")

	// A file our checks accept but llama.cpp refuses (a missing layer tensor is a clean error
	// there): the Go error carries llama.cpp's reason.
	broken := filepath.Join(t.TempDir(), "broken.gguf")
	readGGUF(t, f.Text).without("blk.1.ffn_up.weight").write(t, broken)
	_, err = Load(broken, "", testOptions())
	require.ErrorContains(t, err, "llama.cpp could not load it")
	require.ErrorContains(t, err, "missing tensor 'blk.1.ffn_up.weight'")
}
