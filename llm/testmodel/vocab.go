package testmodel

import (
	"fmt"
	"strings"
	"sync"
)

// The tiny vocabulary (tiny-models.md §2) is shared by every family: 256 byte tokens, 32 merges,
// 20 control tokens and 16 idefics3 tile tokens. Ids never change, so tests can name them.
const (
	numByteTokens  = 256
	tinyVocabSize  = numByteTokens + 32 + 20 + 16 // 324
	firstSpecialID = numByteTokens + 32           // 288
)

// GGUF token types (llama.cpp's llama_token_type).
const (
	tokenNormal      int32 = 1
	tokenControl     int32 = 3
	tokenUserDefined int32 = 4
)

// merges are byte-level BPE merges in byte-encoded form ("Ġ" is a space, "Ċ" a newline), ordered by
// rank. Each merge produces the concatenation of its halves as a new token. "Ċ Ċ" ("\n\n") is needed
// by idefics3, which looks the token up by its text.
var merges = []string{
	"Ġ t", "Ġ a", "h e", "i n", "r e", "o n", "Ġt he", "e r",
	"Ġ s", "a t", "Ġ w", "o u", "a n", "Ġ c", "i s", "e n",
	"e s", "o r", "Ġ o", "Ġ b", "Ġ m", "Ġ f", "i t", "a r",
	"Ġ p", "e d", "Ċ Ċ", "Ġ i", "a l", "l e", "Ġ d", "i c",
}

// SpecialTokens are the control tokens of the tiny vocabulary, ids 288..307 in this order.
var SpecialTokens = []string{
	"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
	"<bos>", "<eos>", "<pad>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>",
	"<img>", "</img>", "<IMG_CONTEXT>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>",
	"<image>",
}

// vocab is a tokenizer ready for the GGUF tokenizer.* keys.
type vocab struct {
	tokens []string
	types  []int32
	merges []string
}

// buildVocab returns the tiny vocabulary padded with normal tokens "[extra_N]" up to size. The padding
// tokens are unreachable by the merges, so tokenization is the same at every size.
func buildVocab(size int) (vocab, error) {
	v := vocab{merges: merges}
	enc := bytesToUnicode()
	for b := range numByteTokens {
		v.tokens = append(v.tokens, string(enc[b]))
		v.types = append(v.types, tokenNormal)
	}
	for _, m := range merges {
		left, right, ok := strings.Cut(m, " ")
		if !ok {
			return v, fmt.Errorf("testmodel: malformed merge %q", m)
		}
		v.tokens = append(v.tokens, left+right)
		v.types = append(v.types, tokenNormal)
	}
	for _, s := range SpecialTokens {
		v.tokens = append(v.tokens, s)
		v.types = append(v.types, tokenControl)
	}
	for r := 1; r <= 4; r++ {
		for c := 1; c <= 4; c++ {
			v.tokens = append(v.tokens, fmt.Sprintf("<row_%d_col_%d>", r, c))
			v.types = append(v.types, tokenUserDefined)
		}
	}
	if len(v.tokens) != tinyVocabSize {
		return v, fmt.Errorf("testmodel: tiny vocabulary has %d tokens, want %d", len(v.tokens), tinyVocabSize)
	}
	for i := tinyVocabSize; i < size; i++ {
		v.tokens = append(v.tokens, fmt.Sprintf("[extra_%d]", i))
		v.types = append(v.types, tokenNormal)
	}
	// llama.cpp asserts on duplicate token texts; catch a bad edit of the tables here instead.
	seen := make(map[string]bool, len(v.tokens))
	for _, t := range v.tokens {
		if seen[t] {
			return v, fmt.Errorf("testmodel: duplicate token %q", t)
		}
		seen[t] = true
	}
	return v, nil
}

// TokenID returns the id of a token of the tiny vocabulary given its text (a special token, a
// "<row_R_col_C>" token, or a byte-encoded normal token), or -1.
func TokenID(text string) int {
	id, ok := tinyTokenIDs()[text]
	if !ok {
		return -1
	}
	return id
}

// tinyTokenIDs maps each token text of the tiny vocabulary to its id (nil if the tables are broken,
// which TestVocabulary catches).
var tinyTokenIDs = sync.OnceValue(func() map[string]int {
	v, err := buildVocab(tinyVocabSize)
	if err != nil {
		return nil
	}
	ids := make(map[string]int, len(v.tokens))
	for i, t := range v.tokens {
		ids[t] = i
	}
	return ids
})

// bytesToUnicode is GPT-2's reversible byte -> printable rune map: printable Latin-1 bytes map to
// themselves, the rest to runes from U+0100 upwards in byte order.
func bytesToUnicode() [256]rune {
	var m [256]rune
	n := 0
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			m[b] = rune(b)
		} else {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}
