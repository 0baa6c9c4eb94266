package llm

import (
	"os"
	"testing"

	"github.com/rs/zerolog"
)

func TestMain(m *testing.M) {
	// llama.cpp's log goes to zerolog at debug level; keep test output readable unless asked.
	if os.Getenv("VZ_DEBUG") == "" {
		zerolog.SetGlobalLevel(zerolog.InfoLevel)
	}
	dir, err := os.MkdirTemp("", "vzlocal-llm-test")
	if err != nil {
		panic(err)
	}
	tinyDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
