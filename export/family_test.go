package export

import (
	"errors"
	"testing"
)

func TestFamilyVerdict(t *testing.T) {
	for _, tc := range []struct {
		arch, projector string
		ok              bool
		warn            bool
	}{
		{"llama", "mlp", true, false},      // LLaVA
		{"llama", "idefics3", true, false}, // SmolVLM
		{"qwen2", "internvl", true, false}, // InternVL
		{"qwen3", "internvl", true, false}, // qwen3 text goes to llamarunner because of the projector
		{"gemma3", "gemma3", true, true},   // loads, causal-attention caveat
		{"llama", "", true, false},         // text-only llama
		{"qwen2vl", "qwen2.5vl_merger", false, false},
		{"qwen2vl", "qwen2vl_merger", false, false},
		{"qwen3vl", "qwen3vl_merger", false, false},
		{"gemma3", "", false, false},   // Ollama engine
		{"qwen25vl", "", false, false}, // Ollama-only arch
		{"mllama", "", false, false},
	} {
		fc := FamilyCheck{Arch: tc.arch, Projector: tc.projector}
		err := fc.verdict()
		if tc.ok && err != nil {
			t.Errorf("%s+%q: unexpected error %v", tc.arch, tc.projector, err)
		}
		if !tc.ok && !errors.Is(err, ErrOllamaFamily) {
			t.Errorf("%s+%q: want ErrOllamaFamily, got %v", tc.arch, tc.projector, err)
		}
		if got := len(fc.Warnings) > 0; got != tc.warn {
			t.Errorf("%s+%q: warnings %v, want warning=%v", tc.arch, tc.projector, fc.Warnings, tc.warn)
		}
	}
}
