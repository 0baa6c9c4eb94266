package llm

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vzlocal/vzlocal/llm/testmodel"
)

func TestSmoke(t *testing.T) {
	m := loadTiny(t, "llava", testOptions())
	p := chatPrompt(t, m, "Describe the image.", testmodel.TestImage(40, 30, 1))
	t.Logf("info %+v tokens %d npos %d spans %+v", m.Info(), len(p.Tokens), p.NPos, len(p.Images))
	cs, err := m.Generate(context.Background(), p, Sampling{Temperature: 1, N: 4, MaxTokens: 8})
	require.NoError(t, err)
	for _, c := range cs {
		t.Logf("%v %v %q %s", c.Tokens, c.LogProbs, c.Text, c.Finish)
	}
}
