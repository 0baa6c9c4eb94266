package testmodel

import (
	"log/slog"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/ollama/ollama/llama"
	"github.com/ollama/ollama/ml"
	"github.com/stretchr/testify/require"

	"github.com/vzlocal/vzlocal/llm/testmodel/internal/llamaprobe"
)

func TestMain(m *testing.M) {
	// llama.cpp logs through slog at INFO; keep test output to warnings and errors.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	llama.BackendInit()
	llamaprobe.QuietMtmdLogs()
	os.Exit(m.Run())
}

// roundTripTexts must tokenize and detokenize to themselves (tiny-models.md §2.1).
var roundTripTexts = []string{
	"Hello world!\n\nThe cat sat on the mat.",
	"Ünïcødé 日本語 🙂 tabs\tand  spaces  ",
	"<|im_start|> literal",
}

var chatMessages = []llamaprobe.Message{
	{Role: "system", Content: "You are a spy."},
	{Role: "user", Content: "<__media__>\nDescribe the image."},
}

// TestFamiliesLoadInLlamaCpp loads every family's tiny model through llama.cpp as a real model is
// loaded and checks the tokenizer, the chat template, a text decode and the image path.
func TestFamiliesLoadInLlamaCpp(t *testing.T) {
	for _, want := range familyWants {
		t.Run(want.family, func(t *testing.T) {
			files, err := Write(t.TempDir(), Config{Family: want.family, Seed: 1})
			require.NoError(t, err)
			checkFamily(t, want, files)
		})
	}
}

func checkFamily(t *testing.T, want familyWant, files Files) {
	model, err := llama.LoadModelFromFile(files.Text, llama.ModelParams{NumGpuLayers: 0, UseMmap: true})
	require.NoError(t, err)
	t.Cleanup(func() { llama.FreeModel(model) })

	require.Equal(t, 64, model.NEmbd())
	require.Equal(t, tinyVocabSize, model.NumVocab())
	arch, ok := llamaprobe.MetaString(model, "general.architecture")
	require.True(t, ok)
	require.Equal(t, want.arch, arch)
	require.Equal(t, want.ropeType, llamaprobe.RopeType(model))

	checkTokenizer(t, model, want)

	tmpl, ok := llamaprobe.ChatTemplate(model)
	require.True(t, ok, "model has no chat template")
	chat, err := llamaprobe.ApplyChatTemplate(tmpl, chatMessages, true)
	require.NoError(t, err)
	require.Equal(t, want.chat, chat)

	// The llama context has no Free in the Go package; it lives until the process ends.
	lctx, err := llama.NewContextWithModel(model, llama.NewContextParams(1024, 512, 1, 1, ml.FlashAttentionAuto, ""))
	require.NoError(t, err)
	textPrompt := strings.Replace(chat, llamaprobe.MediaMarker()+"\n", "", 1)
	tokens, err := model.Tokenize(textPrompt, true, true)
	require.NoError(t, err)
	decodeTokens(t, lctx, tokens)

	checkImages(t, model, lctx, files.MMProj, want, chat)
}

func checkTokenizer(t *testing.T, model *llama.Model, want familyWant) {
	for _, s := range roundTripTexts {
		ids, err := model.Tokenize(s, false, false)
		require.NoError(t, err)
		var b strings.Builder
		for _, id := range ids {
			b.WriteString(model.TokenToPiece(id))
		}
		require.Equal(t, s, b.String(), "round trip")
	}
	// A merge must be used: " the" is one token, so the BPE merges really load.
	ids, err := model.Tokenize(" the", false, false)
	require.NoError(t, err)
	require.Equal(t, []int{TokenID("Ġthe")}, ids)

	for i, s := range SpecialTokens {
		ids, err := model.Tokenize(s, false, true)
		require.NoError(t, err)
		require.Equal(t, []int{firstSpecialID + i}, ids, "special token %s", s)
		require.True(t, llamaprobe.IsControl(model, ids[0]), "%s is not CONTROL", s)
	}
	ids, err = model.Tokenize("<row_2_col_3>", false, true)
	require.NoError(t, err)
	require.Equal(t, []int{TokenID("<row_2_col_3>")}, ids)

	for _, s := range want.eog {
		require.True(t, model.TokenIsEog(TokenID(s)), "%s must end generation", s)
	}
	require.False(t, model.TokenIsEog(TokenID("a")))
	require.False(t, model.TokenIsEog(TokenID("<|im_start|>")))
}

// decodeTokens decodes a prompt and checks that the last logits are finite and not all equal.
func decodeTokens(t *testing.T, lctx *llama.Context, tokens []int) {
	lctx.KvCacheClear()
	batch, err := llama.NewBatch(len(tokens), 1, 0)
	require.NoError(t, err)
	defer batch.Free()
	for i, tok := range tokens {
		batch.Add(tok, nil, i, i == len(tokens)-1, 0)
	}
	require.NoError(t, lctx.Decode(batch))
	checkLogits(t, lctx.GetLogitsIth(-1))
}

func checkLogits(t *testing.T, logits []float32) {
	require.NotEmpty(t, logits)
	lo, hi := logits[0], logits[0]
	for _, v := range logits {
		require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), "non-finite logit")
		lo, hi = min(lo, v), max(hi, v)
	}
	require.Greater(t, hi, lo, "all logits equal")
}

func checkImages(t *testing.T, model *llama.Model, lctx *llama.Context, mmproj string, want familyWant, chat string) {
	img := TestImage(40, 30, 1)

	// The Go package's path, as the rollout engine uses it.
	mctx, err := llama.NewMtmdContext(lctx, mmproj)
	require.NoError(t, err)
	defer mctx.Free()
	chunks, err := mctx.MultimodalTokenize(lctx, img)
	require.NoError(t, err)
	var rows int
	var texts [][]int
	embd, err := llama.NewBatch(len(chunks), 1, model.NEmbd())
	require.NoError(t, err)
	defer embd.Free()
	for _, c := range chunks {
		if c.Embed != nil {
			require.Len(t, c.Embed, model.NEmbd())
			rows++
			embd.Add(0, c.Embed, rows-1, rows == 1, 0)
		} else {
			texts = append(texts, c.Tokens)
		}
	}
	require.Equal(t, want.imageRows, rows, "image embedding rows")
	if want.imageFirst == nil {
		require.Empty(t, texts, "no text around the image")
	} else {
		require.NotEmpty(t, texts)
		require.Equal(t, ids(want.imageFirst), texts[0], "first text chunk")
		require.Equal(t, ids(want.imageLast), texts[len(texts)-1], "last text chunk")
	}
	for _, s := range append(want.imageFirst, want.imageLast...) {
		got, err := model.Tokenize(s, false, true)
		require.NoError(t, err)
		require.Len(t, got, 1, "%s must be one special token", s)
	}
	// Decoding the embeddings at sequential positions works for every family (it is exact only for
	// some, see tiny-models.md §7, but it must not fail).
	lctx.KvCacheClear()
	require.NoError(t, lctx.Decode(embd))
	checkLogits(t, lctx.GetLogitsIth(0))

	// The helper path over the whole chat prompt: chunk layout and positions (1 thread).
	probe, err := llamaprobe.NewMtmd(model, mmproj)
	require.NoError(t, err)
	defer probe.Free()
	require.Equal(t, want.mrope, probe.UsesMRoPE())
	require.Equal(t, want.nonCausal, probe.NonCausal())
	pc, err := probe.Tokenize(chat, img)
	require.NoError(t, err)
	var tokens, pos, images int
	for _, c := range pc {
		if c.Image {
			images++
			tokens += c.NTokens
			pos += c.NPos
			require.Equal(t, c.NTokens, c.NX*c.NY, "image grid")
		}
	}
	require.Equal(t, want.imageChunks, images, "image chunks")
	require.Equal(t, want.imageRows, tokens, "image tokens")
	require.Equal(t, want.imagePos, pos, "image positions")
}

func ids(tokens []string) []int {
	out := make([]int, len(tokens))
	for i, s := range tokens {
		out[i] = TokenID(s)
	}
	return out
}
