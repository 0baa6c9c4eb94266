package export

import (
	"os"
	"testing"

	"github.com/rs/zerolog"
)

func TestMain(m *testing.M) {
	// llama.cpp logs through zerolog at debug level; keep test output readable unless asked.
	if os.Getenv("VZ_DEBUG") == "" {
		zerolog.SetGlobalLevel(zerolog.InfoLevel)
	}
	os.Exit(m.Run())
}
