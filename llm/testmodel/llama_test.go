package testmodel

import (
	"cmp"
	"log/slog"
	"math"
	"os"
	"slices"
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

var multiTurnMessages = append(chatMessages[:2:2],
	llamaprobe.Message{Role: "assistant", Content: "It is red."},
	llamaprobe.Message{Role: "user", Content: "Vote."})

// TestFamiliesLoadInLlamaCpp loads every family's tiny model through llama.cpp as a real model is
// loaded and checks the tokenizer, the chat template, a text decode and the image path.
func TestFamiliesLoadInLlamaCpp(t *testing.T) {
	for _, want := range familyWants {
		t.Run(want.family, func(t *testing.T) {
			files, err := Write(t.TempDir(), Config{Family: want.family, Seed: 1})
			require.NoError(t, err)
			// The Go package's mtmd context always runs 4 threads, whose spin barriers collapse
			// on a busy 2-core machine (10-20 s per family measured; tiny-models.md §7.4), so the
			// Go path runs for one plain and the M-RoPE family; every family goes through the
			// same mtmd calls with 1 thread in checkHelperImagePath.
			goMtmd := want.family == "llava" || want.family == "qwen2vl"
			checkFamily(t, want, files, checkOpts{embd: 64, vocab: tinyVocabSize, goMtmd: goMtmd})
		})
	}
}

// TestWeightTypesLoadInLlamaCpp repeats the check with F16 and Q8_0 matrices in both files. The image
// check uses only the 1-thread mtmd context here: the Go package's 4-thread one is slow on a busy CI
// machine and was already exercised above.
func TestWeightTypesLoadInLlamaCpp(t *testing.T) {
	for _, wt := range []string{"f16", "q8_0"} {
		for _, want := range familyWants {
			t.Run(wt+"/"+want.family, func(t *testing.T) {
				files, err := Write(t.TempDir(), Config{Family: want.family, Seed: 3, WeightType: wt})
				require.NoError(t, err)
				checkFamily(t, want, files, checkOpts{embd: 64, vocab: tinyVocabSize})
			})
		}
	}
}

// TestLargerSizesLoadInLlamaCpp covers non-default sizes: a wide padded vocabulary (as a benchmark
// model of Qwen2.5's 151936 tokens has) and other widths and depths.
func TestLargerSizesLoadInLlamaCpp(t *testing.T) {
	for _, tc := range []struct {
		name string
		want familyWant
		cfg  Config
	}{
		{"internvl qwen2.5 vocab q8_0", familyWants[4], Config{Family: "internvl", Vocab: 151936, Embd: 96, Heads: 6, KVHeads: 2, FFN: 160, Layers: 1, WeightType: "q8_0"}},
		{"qwen2vl 3 layers 1 kv head", familyWants[1], Config{Family: "qwen2vl", Embd: 128, Heads: 4, KVHeads: 1, FFN: 96, Layers: 3, Vocab: 500}},
		{"gemma3 2 layers no SWA", familyWants[2], Config{Family: "gemma3", Layers: 2, Embd: 32, Heads: 2, KVHeads: 1, FFN: 64}},
		{"qwen2vl std 0.3", familyWants[1], Config{Family: "qwen2vl", WeightStd: 0.3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, err := Write(t.TempDir(), tc.cfg)
			require.NoError(t, err)
			checkFamily(t, tc.want, files, checkOpts{embd: cmp.Or(tc.cfg.Embd, 64), vocab: max(tc.cfg.Vocab, tinyVocabSize)})
		})
	}
}

type checkOpts struct {
	embd, vocab int
	goMtmd      bool // also run the Go package's NewMtmdContext + MultimodalTokenize
}

func checkFamily(t *testing.T, want familyWant, files Files, o checkOpts) {
	model, err := llama.LoadModelFromFile(files.Text, llama.ModelParams{NumGpuLayers: 0, UseMmap: true})
	require.NoError(t, err)
	t.Cleanup(func() { llama.FreeModel(model) })

	require.Equal(t, o.embd, model.NEmbd())
	require.Equal(t, o.vocab, model.NumVocab())
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
	multi, err := llamaprobe.ApplyChatTemplate(tmpl, multiTurnMessages, true)
	require.NoError(t, err)
	require.Equal(t, want.multiTurn, multi)

	// The llama context has no Free in the Go package; it lives until the process ends.
	lctx, err := llama.NewContextWithModel(model, llama.NewContextParams(1024, 512, 1, 1, ml.FlashAttentionAuto, ""))
	require.NoError(t, err)
	textPrompt := strings.Replace(chat, llamaprobe.MediaMarker()+"\n", "", 1)
	tokens, err := model.Tokenize(textPrompt, true, true)
	require.NoError(t, err)
	decodeTokens(t, lctx, tokens)

	if files.MMProj == "" {
		return
	}
	if o.goMtmd {
		checkGoImagePath(t, model, lctx, files.MMProj, want)
	}
	checkHelperImagePath(t, model, files.MMProj, want, chat)
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
	requireFinite(t, logits)
	require.Greater(t, slices.Max(logits), slices.Min(logits), "all logits equal")
}

// requireFinite also rejects all-zero vectors, which a missing or skipped computation would give.
func requireFinite(t *testing.T, v []float32) {
	var nonzero bool
	for _, x := range v {
		require.False(t, math.IsNaN(float64(x)) || math.IsInf(float64(x), 0), "non-finite value")
		nonzero = nonzero || x != 0
	}
	require.True(t, nonzero, "all values are zero")
}

// checkGoImagePath runs the Go package's image path, as the rollout engine uses it.
func checkGoImagePath(t *testing.T, model *llama.Model, lctx *llama.Context, mmproj string, want familyWant) {
	img := TestImage(40, 30, 1)
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
			requireFinite(t, c.Embed)
			rows++
			embd.Add(0, c.Embed, rows-1, rows == 1, 0)
		} else {
			texts = append(texts, c.Tokens)
		}
	}
	checkMarkerChunks(t, model, want, rows, texts)
	// Decoding the embeddings at sequential positions works for every family (it is exact only for
	// some, see tiny-models.md §7, but it must not fail).
	lctx.KvCacheClear()
	require.NoError(t, lctx.Decode(embd))
	checkLogits(t, lctx.GetLogitsIth(0))
}

// checkHelperImagePath tokenizes the whole chat prompt with mtmd (1 thread) and checks the chunk
// layout and the positions the image takes.
func checkHelperImagePath(t *testing.T, model *llama.Model, mmproj string, want familyWant, chat string) {
	img := TestImage(40, 30, 1)
	probe, err := llamaprobe.NewMtmd(model, mmproj)
	require.NoError(t, err)
	defer probe.Free()
	require.Equal(t, want.mrope, probe.UsesMRoPE())
	require.Equal(t, want.nonCausal, probe.NonCausal())

	// The marker alone, as the Go package's MultimodalTokenize tokenizes it.
	pc, err := probe.Tokenize(llamaprobe.MediaMarker(), img)
	require.NoError(t, err)
	var rows int
	var texts [][]int
	for _, c := range pc {
		if c.Image {
			rows += c.NTokens
		} else {
			texts = append(texts, c.Tokens)
		}
	}
	checkMarkerChunks(t, model, want, rows, texts)

	pc, err = probe.Tokenize(chat, img)
	require.NoError(t, err)
	var tokens, pos, images int
	for _, c := range pc {
		if c.Image {
			images++
			tokens += c.NTokens
			pos += c.NPos
			require.Equal(t, c.NTokens, c.NX*c.NY, "image grid")
			require.Len(t, c.Embd, c.NTokens*model.NEmbd())
			requireFinite(t, c.Embd)
		}
	}
	require.Equal(t, want.imageChunks, images, "image chunks")
	require.Equal(t, want.imageRows, tokens, "image tokens")
	require.Equal(t, want.imagePos, pos, "image positions")
}

// checkMarkerChunks checks the tokenization of the image marker alone: the number of embedding rows
// and the family's image begin/end tokens, each a single special token.
func checkMarkerChunks(t *testing.T, model *llama.Model, want familyWant, rows int, texts [][]int) {
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
}

func ids(tokens []string) []int {
	out := make([]int, len(tokens))
	for i, s := range tokens {
		out[i] = TokenID(s)
	}
	return out
}
