package llm

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// TestCloseSurvivesPerturbedMalloc: llama_context and mtmd's clip_ctx free their backends before
// their scheduler, whose free (Ollama's ggml patch) still reads each backend. With glibc filling
// freed memory (glibc.malloc.perturb; tcache off, since tcache frees are not perturbed) that read
// crashes the first Close; the link-time wrap in vz.cpp keeps the backends until the scheduler is
// gone. The work runs in a child process because the tunables are read when a process starts.
func TestCloseSurvivesPerturbedMalloc(t *testing.T) {
	if os.Getenv("VZ_PERTURBED_CHILD") == "1" {
		for _, family := range []string{"llava", "gemma3"} {
			f := tinyModelFiles(t, family)
			for i := range 3 {
				m, err := Load(f.Text, f.MMProj, testOptions())
				require.NoError(t, err)
				text, err := m.FormatChat([]Message{{"user", MediaMarker() + "\nWhat is this?"}})
				require.NoError(t, err)
				_, err = m.Tokenize(text, testmodel.TestImage(40, 30, int64(i)))
				require.NoError(t, err)
				m.Close()
			}
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCloseSurvivesPerturbedMalloc$", "-test.count=1")
	cmd.Env = append(os.Environ(), "VZ_PERTURBED_CHILD=1", "GLIBC_TUNABLES=glibc.malloc.tcache_count=0:glibc.malloc.perturb=85")
	out, err := cmd.CombinedOutput()
	if err != nil {
		tail := out
		if len(tail) > 3000 {
			tail = tail[len(tail)-3000:]
		}
		t.Fatalf("Load/Close with perturbed malloc failed: %v\n%s", err, tail)
	}
}
