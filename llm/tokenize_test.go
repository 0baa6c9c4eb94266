package llm

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// Chunk layouts for a 40×30 image, from tiny-models.md §6 (llava: 16 rows on a 16×1 grid;
// qwen2vl: a 4×3 grid that takes max(4,3) positions, wrapped in <|vision_start|>/<|vision_end|>;
// gemma3: 4 rows inside <start_of_image>/<end_of_image>; smolvlm: 4 slices + 1 overview. mtmd
// reports a grid of n×1 for models without M-RoPE).
func TestTokenizeImageLayout(t *testing.T) {
	cases := []struct {
		family       string
		spans        int
		rows         int // per span
		nx, ny, npos int
		before       string // token just before the first image row ("" = not checked)
		after        string
		mrope        bool
		nonCausal    bool
		turnEnd      string // the template's end-of-turn special token
	}{
		{"llava", 1, 16, 16, 1, 16, "", "", false, false, "<|im_end|>"},
		{"qwen2vl", 1, 12, 4, 3, 4, "<|vision_start|>", "<|vision_end|>", true, false, "<|im_end|>"},
		{"gemma3", 1, 4, 4, 1, 4, "<start_of_image>", "<end_of_image>", false, true, "<end_of_turn>"},
		{"smolvlm", 5, 4, 4, 1, 4, "", "", false, false, "<end_of_utterance>"},
	}
	image := testmodel.TestImage(40, 30, 1)
	for _, c := range cases {
		t.Run(c.family, func(t *testing.T) {
			m := loadTiny(t, c.family, testOptions())
			require.Equal(t, c.mrope, m.Info().MRoPE)
			require.Equal(t, c.nonCausal, m.Info().NonCausalImages)
			p := chatPrompt(t, m, "Describe the image.", image)
			require.Len(t, p.Images, c.spans)
			imageRows, pos := 0, 0
			for i, sp := range p.Images {
				require.Equal(t, c.rows, sp.Rows, "span %d", i)
				require.Equal(t, c.nx, sp.NX)
				require.Equal(t, c.ny, sp.NY)
				require.Equal(t, c.npos, sp.NPos)
				require.Len(t, sp.Embd, sp.Rows*m.Info().NEmbdInp)
				require.Equal(t, ImageKey(image)+"#"+string(rune('0'+i)), sp.Key)
				for r := range sp.Rows {
					require.Equal(t, ImageRow, p.Tokens[sp.Index+r])
				}
				require.NotEqual(t, ImageRow, p.Tokens[sp.Index-1])
				imageRows += sp.Rows
				pos += sp.NPos
			}
			textTokens := 0
			for _, tok := range p.Tokens {
				if tok != ImageRow {
					textTokens++
				}
			}
			require.Equal(t, len(p.Tokens), textTokens+imageRows)
			require.Equal(t, textTokens+pos, p.NPos, "text advances one position per token, images by NPos")
			sp := p.Images[0]
			if c.before != "" {
				require.Equal(t, int32(testmodel.TokenID(c.before)), p.Tokens[sp.Index-1])
				require.Equal(t, int32(testmodel.TokenID(c.after)), p.Tokens[sp.Index+sp.Rows])
			}
			// The special tokens of the template are single tokens, and the text round-trips.
			require.Contains(t, p.Tokens, int32(testmodel.TokenID(c.turnEnd)))
			require.True(t, m.IsEOG(int32(testmodel.TokenID(c.turnEnd))))

			// Positions: consecutive for text, the image's own layout for rows.
			positions := p.Positions(c.mrope)
			require.Equal(t, int32(sp.Pos), positions[sp.Index])
			require.Equal(t, int32(p.NPos-1), positions[len(positions)-1])
		})
	}
}

// The engine decodes cached image rows itself (vz_decode_embd); it must give exactly the logits
// of llama.cpp's reference path (mtmd_helper_eval_chunks), including M-RoPE positions (qwen2vl)
// and non-causal image attention (gemma3).
func TestImagePathMatchesMtmdHelper(t *testing.T) {
	image := testmodel.TestImage(40, 30, 2)
	for _, family := range []string{"llava", "qwen2vl", "gemma3", "smolvlm", "internvl"} {
		t.Run(family, func(t *testing.T) {
			m := loadTiny(t, family, testOptions())
			text, err := m.FormatChat([]Message{{"user", MediaMarker() + "\nWhat is in the image?"}})
			require.NoError(t, err)
			want, npast, err := m.referenceLastLogits(text, [][]byte{image})
			require.NoError(t, err)
			p, err := m.Tokenize(text, image)
			require.NoError(t, err)
			require.Equal(t, npast, p.NPos)
			m.mu.Lock()
			last, err := m.evalPrompt(p, nil)
			m.mu.Unlock()
			require.NoError(t, err)
			require.Equal(t, want, last, "max diff %g", maxAbsDiff(want, last))
			// Logits asks for every row's logits, which changes llama.cpp's output shapes and so
			// the rounding, slightly.
			all, err := m.Logits(p, nil)
			require.NoError(t, err)
			require.Less(t, maxAbsDiff(want, all[len(p.Tokens)-1]), 1e-5)
		})
	}
}

func TestTokenizeErrors(t *testing.T) {
	m := loadTiny(t, "llava", testOptions())
	image := testmodel.TestImage(8, 8, 1)
	_, err := m.Tokenize("no marker here", image)
	require.ErrorContains(t, err, "the text has 0 image markers")
	_, err = m.Tokenize(MediaMarker()+MediaMarker(), image)
	require.ErrorContains(t, err, "the text has 2 image markers")
	_, err = m.Tokenize(MediaMarker(), []byte("not an image"))
	require.ErrorContains(t, err, "image 0 (12 bytes) cannot be decoded")
	_, err = m.Generate(context.Background(), &Prompt{}, Sampling{})
	require.ErrorContains(t, err, "empty prompt")
	// C strings: text after a NUL used to be dropped silently
	_, err = m.Tokenize(MediaMarker()+"keep\x00dropped", image)
	require.ErrorContains(t, err, "NUL byte at offset")
	_, err = m.FormatChat([]Message{{"user", "keep\x00dropped"}})
	require.ErrorContains(t, err, "message 0 has a NUL byte")
	// a NaN temperature (or one whose inverse overflows) used to give NaN log-probs, silently
	text, err := m.TokenizeText("hi", true)
	require.NoError(t, err)
	p := &Prompt{Tokens: text, NPos: len(text)}
	for _, s := range []Sampling{{Temperature: float32(math.NaN())}, {Temperature: 1e-45}, {Temperature: 1, TopP: float32(math.NaN())}} {
		_, err = m.Generate(bg, p, s)
		require.ErrorContains(t, err, "llm: Sampling.")
		_, err = m.Score(bg, p, [][]int32{{1}}, s)
		require.ErrorContains(t, err, "llm: Sampling.")
		_, err = m.GenerateBatch(bg, []Request{{Prompt: p, Sampling: s}})
		require.ErrorContains(t, err, "llm: Sampling.")
	}
	_, err = m.Logits(nil, []int32{1}) // used to panic on the nil prompt
	require.ErrorContains(t, err, "empty prompt")
	_, err = m.Generate(context.Background(), &Prompt{Tokens: []int32{1, 5000}, NPos: 2}, Sampling{})
	require.ErrorContains(t, err, "outside the vocabulary")
}

// Detokenize of a multimodal prompt's tokens (ImageRow entries) or of ids outside the vocabulary
// used to abort the process (llama.cpp throws std::out_of_range through its C API).
func TestDetokenizeSkipsIdsOutsideVocabulary(t *testing.T) {
	m := loadTiny(t, "llava", testOptions())
	p := chatPrompt(t, m, "Describe it.", testmodel.TestImage(40, 30, 1))
	require.Contains(t, p.Tokens, ImageRow)
	text := m.Detokenize(p.Tokens)
	require.Contains(t, text, "Describe it.")
	hi := int32(m.Info().NVocab)
	want := m.Detokenize([]int32{int32(testmodel.TokenID("a"))})
	require.Equal(t, "a", want)
	require.Equal(t, want, m.Detokenize([]int32{ImageRow, int32(testmodel.TokenID("a")), hi, -7}))
	require.Equal(t, "", m.Detokenize([]int32{hi}))
}

// The projector runs once per image: a second prompt with the same image reuses the rows.
func TestImageEmbeddingsCached(t *testing.T) {
	m := loadTiny(t, "llava", testOptions())
	image := testmodel.TestImage(40, 30, 3)
	p1 := chatPrompt(t, m, "first", image)
	p2 := chatPrompt(t, m, "second question", image)
	require.Same(t, &p1.Images[0].Embd[0], &p2.Images[0].Embd[0])
	rows, ok := m.ImageEmbedding(p1.Images[0].Key)
	require.True(t, ok)
	require.Same(t, &p1.Images[0].Embd[0], &rows[0])
	p3 := chatPrompt(t, m, "first", testmodel.TestImage(40, 30, 4))
	require.NotEqual(t, p1.Images[0].Embd, p3.Images[0].Embd)
}

func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, abs64(float64(a[i])-float64(b[i])))
	}
	return d
}

func abs64(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestChatPrompt(t *testing.T) {
	m := loadTiny(t, "llava", testOptions())
	image := testmodel.TestImage(40, 30, 1)
	got, err := m.ChatPrompt("You are a spy.", "Describe the image.", image)
	require.NoError(t, err)
	require.Equal(t, chatPrompt(t, m, "Describe the image.", image), got)
	text, err := m.ChatPrompt("", "Just text.")
	require.NoError(t, err)
	require.Empty(t, text.Images)
	require.Equal(t, "user\nJust text.\nassistant\n", m.Detokenize(text.Tokens), "control tokens are left out")
}

func TestPromptLimits(t *testing.T) {
	opts := testOptions()
	opts.ContextSize = 256
	m := loadTiny(t, "llava", opts)
	long := strings.Repeat("word ", 400)
	p, err := m.ChatPrompt("", long)
	require.NoError(t, err)
	_, err = m.Generate(bg, p, Sampling{MaxTokens: 4})
	require.ErrorContains(t, err, "does not fit the context of 256 cells")

	f := tinyModelFiles(t, "llava")
	textOnly, err := Load(f.Text, "", testOptions())
	require.NoError(t, err)
	defer textOnly.Close()
	_, err = textOnly.ChatPrompt("", "look", testmodel.TestImage(8, 8, 1))
	require.ErrorContains(t, err, "loaded without an mmproj")
}
