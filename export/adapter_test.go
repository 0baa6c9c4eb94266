package export

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// TestAddDelta checks the fold against the formulas of llama.cpp's compute (llama-cpp-notes §2.3),
// written out as plain loops over (row, column, rank), for a linear weight and for token_embd,
// whose factors are stored flipped.
func TestAddDelta(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	const in, out, rank, s = 5, 3, 2, float32(0.75)

	lin := Pair{Base: "blk.0.attn_q.weight", A: randSlice(r, rank*in), B: randSlice(r, out*rank), AShape: [2]int{in, rank}, BShape: [2]int{rank, out}}
	w := make([]float32, out*in)
	lin.addDelta(w, s, 0, out)
	for o := 0; o < out; o++ {
		for i := 0; i < in; i++ {
			var want float32
			for k := 0; k < rank; k++ {
				want += lin.B[o*rank+k] * lin.A[k*in+i] // B [out][r] · A [r][in]
			}
			require.InDelta(t, s*want, w[o*in+i], 1e-5)
		}
	}

	const vocab, embd = 4, 3
	emb := Pair{Base: "token_embd.weight", A: randSlice(r, vocab*rank), B: randSlice(r, embd*rank), AShape: [2]int{rank, vocab}, BShape: [2]int{rank, embd}}
	require.NoError(t, (&Adapter{Arch: "llama", Pairs: []Pair{emb}}).check())
	w = make([]float32, vocab*embd)
	emb.addDelta(w, s, 0, vocab)
	for v := 0; v < vocab; v++ {
		for e := 0; e < embd; e++ {
			var want float32
			for k := 0; k < rank; k++ {
				want += emb.B[e*rank+k] * emb.A[v*rank+k] // get_rows(A, v) then B·that
			}
			require.InDelta(t, s*want, w[v*embd+e], 1e-5)
		}
	}
}

func TestAdapterCheck(t *testing.T) {
	good := Pair{Base: "blk.0.attn_q.weight", A: make([]float32, 8), B: make([]float32, 6), AShape: [2]int{4, 2}, BShape: [2]int{2, 3}}
	require.NoError(t, (&Adapter{Arch: "llama", Pairs: []Pair{good}}).check())
	for name, tc := range map[string]struct {
		ad   Adapter
		want string
	}{
		"no arch":    {Adapter{Pairs: []Pair{good}}, "no architecture"},
		"no tensors": {Adapter{Arch: "llama"}, "no tensors"},
		"twice":      {Adapter{Arch: "llama", Pairs: []Pair{good, good}}, "appears twice"},
		"rank":       {Adapter{Arch: "llama", Pairs: []Pair{{Base: good.Base, A: good.A, B: make([]float32, 9), AShape: good.AShape, BShape: [2]int{3, 3}}}}, "rank"},
		"data":       {Adapter{Arch: "llama", Pairs: []Pair{{Base: good.Base, A: good.A[:7], B: good.B, AShape: good.AShape, BShape: good.BShape}}}, "does not match shapes"},
	} {
		require.ErrorContains(t, tc.ad.check(), tc.want, name)
	}
	require.Equal(t, float32(1), (&Adapter{}).Scale(good), "alpha 0: llama.cpp does not divide by rank")
	require.Equal(t, float32(4), (&Adapter{Alpha: 8}).Scale(good))
}
