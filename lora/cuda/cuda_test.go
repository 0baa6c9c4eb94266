package cuda

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/vzlocal/vzlocal/llm/testmodel"
	"github.com/vzlocal/vzlocal/lora"
)

func TestMain(m *testing.M) {
	zerolog.SetGlobalLevel(zerolog.WarnLevel)
	os.Exit(m.Run())
}

// Tests here run everywhere; the parity tests (parity_test.go) need the library and a GPU and
// skip with the reason otherwise.

// TestAvailableSaysWhy: Available answers on any machine, and Open's error then says why and
// wraps ErrNoLibrary or ErrNoDevice, so that an automatic engine choice can fall back to the CPU.
func TestAvailableSaysWhy(t *testing.T) {
	ok, msg := Available()
	t.Logf("Available: %v: %s", ok, msg)
	if msg == "" {
		t.Fatal("Available gave no description")
	}
	if ok {
		return
	}
	_, err := Open(tinyModel(t), Options{})
	if err == nil {
		t.Fatal("Open succeeded although Available said no")
	}
	if !errors.Is(err, ErrNoLibrary) && !errors.Is(err, ErrNoDevice) {
		t.Fatalf("Open error does not wrap ErrNoLibrary or ErrNoDevice: %v", err)
	}
}

// TestUnsupportedArch: an architecture the CUDA engine does not implement is refused before
// anything is loaded, with an error the automatic choice can fall back on.
func TestUnsupportedArch(t *testing.T) {
	m := lora.RandomModel(tinyConfig("llama"), 1)
	m.Cfg.Arch = "gemma3"
	if _, err := Open(m, Options{}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("got %v, want ErrUnsupported", err)
	}
}

// TestMissingLibrary: a path that does not exist is an ErrNoLibrary naming the path.
func TestMissingLibrary(t *testing.T) {
	_, err := tryLoad([]string{"/nonexistent/libvzlocal_cuda.so"})
	if !errors.Is(err, ErrNoLibrary) || !strings.Contains(err.Error(), "/nonexistent/libvzlocal_cuda.so") {
		t.Fatalf("got %v", err)
	}
}

// TestPackSharedPrompt checks the layout the library relies on: the common prefix once, each
// remainder attending to it, targets sorted by row and pointing at the previous token's row.
func TestPackSharedPrompt(t *testing.T) {
	m := lora.RandomModel(tinyConfig("llama"), 1)
	img := make([]float32, 2*m.Cfg.NEmbd)
	for i := range img {
		img[i] = float32(i%7) - 3
	}
	mk := func(tokens ...int32) lora.Sequence {
		s := lora.Sequence{Tokens: tokens, Embeds: []lora.EmbedSpan{{Pos: 1, Rows: img}}, Mask: make([]bool, len(tokens))}
		for i := 4; i < len(tokens); i++ {
			s.Mask[i] = true
		}
		return s
	}
	b := &lora.Batch{Seqs: []lora.Sequence{mk(5, 0, 0, 7, 8, 9), mk(5, 0, 0, 7, 10), mk(5, 0, 0, 7, 8, 11, 12)}, Temperature: 0.5}
	pk, err := packBatch(b, m, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Prefix: 5, img, img, 7 (index 4 differs: 8 vs 10).
	if pk.prefix != 4 || pk.n != 4+2+1+3 {
		t.Fatalf("prefix %d rows %d", pk.prefix, pk.n)
	}
	wantSeg := []int32{0, 4, 0, 4, 6, 4, 6, 7, 4, 7, 10, 4}
	if !equal(pk.seg, wantSeg) {
		t.Fatalf("segments %v, want %v", pk.seg, wantSeg)
	}
	if !pk.sortedTargets() || pk.invTemp != 2 {
		t.Fatalf("targets unsorted or inverse temperature %v", pk.invTemp)
	}
	// Sequence 1's token 4 (10) is scored from the prompt's last row 3; its row is 6.
	found := false
	for i := range pk.tRow {
		if pk.tSeq[i] == 1 && pk.tIdx[i] == 4 {
			found = pk.tRow[i] == 3 && pk.tTok[i] == 10
		}
	}
	if !found {
		t.Fatal("target (seq 1, index 4) not scored from row 3")
	}
	E := m.Cfg.NEmbd
	if pk.x0[E] != img[0] || pk.x0[0] != m.TokEmbd[5*E] {
		t.Fatal("input rows are not the embedding rows")
	}
	// MemoryEstimate's layout: the same rows, segments and targets, without the input rows.
	lo, _, err := layoutBatch(b, m.Cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lo.x0 != nil || lo.n != pk.n || !equal(lo.seg, pk.seg) || !equal(lo.tRow, pk.tRow) || !equal(lo.tTok, pk.tTok) {
		t.Fatalf("layoutBatch differs from packBatch: %+v", lo)
	}
	if _, err := packBatch(&lora.Batch{Seqs: []lora.Sequence{{Tokens: []int32{1, int32(m.Cfg.NVocab)}}}}, m, nil, nil); err == nil {
		t.Fatal("token outside the vocabulary accepted")
	}
}

func equal(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// tinyConfig is lora's small test decoder (lora/testutil_test.go), repeated here.
func tinyConfig(arch string) lora.Config {
	c := lora.Config{Arch: arch, NLayer: 2, NEmbd: 32, NHead: 4, NHeadKV: 2, HeadDim: 8, NFF: 64, NVocab: 300,
		NCtx: 512, NRot: 8, RMSEps: 1e-5, RopeBase: 10000, RopeScale: 1, Rope: lora.RopeNorm}
	if arch == "qwen2" {
		c.HasQKVBias, c.RopeBase, c.Rope = true, 1000000, lora.RopeNeox
	}
	return c
}

// qwen05Config has the dimensions of Qwen2.5-0.5B (random weights; nothing is downloaded).
func qwen05Config() lora.Config {
	return lora.Config{Arch: "qwen2", NLayer: 24, NEmbd: 896, NHead: 14, NHeadKV: 2, HeadDim: 64, NFF: 4864,
		NVocab: 151936, NCtx: 32768, NRot: 64, RMSEps: 1e-6, RopeBase: 1e6, RopeScale: 1, Rope: lora.RopeNeox,
		TiedOutput: true, HasQKVBias: true}
}

// tinyModel is the project's tiny llava text model, read from its GGUF like a user's model.
func tinyModel(t testing.TB) *lora.Model {
	t.Helper()
	f, err := testmodel.Write(t.TempDir(), testmodel.Config{Family: "llava", Seed: 1, NoMMProj: true})
	if err != nil {
		t.Fatal(err)
	}
	m, err := lora.LoadModel(f.Text)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// randomAdapter has random A and a non-zero random B so that every LoRA term matters.
func randomAdapter(t testing.TB, c lora.Config, rank int, seed uint64) *lora.Adapter {
	t.Helper()
	a, err := lora.NewAdapter(c, lora.AdapterOptions{Rank: rank, Alpha: 2 * float32(rank), Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 99))
	for _, p := range a.Pairs {
		for i := range p.B {
			p.B[i] = float32(0.05 * r.NormFloat64())
		}
	}
	return a
}

// groupBatch is a GRPO-like group: g completions of one prompt that holds an image span, with
// the completions scored and mixed-sign weights, at a temperature other than 1.
func groupBatch(c lora.Config, g, prompt, completion int, seed uint64) (*lora.Batch, [][]float32) {
	r := rand.New(rand.NewPCG(seed, 3))
	p := make([]int32, prompt)
	for i := range p {
		p[i] = int32(r.IntN(c.NVocab))
	}
	img := make([]float32, 3*c.NEmbd)
	for i := range img {
		img[i] = float32(0.5 * r.NormFloat64())
	}
	b := &lora.Batch{Temperature: 0.8}
	var w [][]float32
	for s := 0; s < g; s++ {
		n := prompt + completion + 2*s
		seq := lora.Sequence{Tokens: append([]int32(nil), p...), Embeds: []lora.EmbedSpan{{Pos: 2, Rows: img}}, Mask: make([]bool, n)}
		ws := make([]float32, n)
		adv := float32(r.NormFloat64())
		for i := prompt; i < n; i++ {
			seq.Tokens = append(seq.Tokens, int32(r.IntN(c.NVocab)))
			seq.Mask[i] = true
			ws[i] = adv * float32(0.5+r.Float64())
		}
		b.Seqs = append(b.Seqs, seq)
		w = append(w, ws)
	}
	return b, w
}

// relErr is ||a-b|| / ||b|| in float64; maxAbs the largest |a-b|.
func relErr(a, b []float32) (rel, maxAbs float64) {
	var d2, r2 float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		d2 += d * d
		r2 += float64(b[i]) * float64(b[i])
		maxAbs = math.Max(maxAbs, math.Abs(d))
	}
	if r2 == 0 {
		return math.Sqrt(d2), maxAbs
	}
	return math.Sqrt(d2 / r2), maxAbs
}

func flat2(x [][]float32) []float32 {
	var out []float32
	for _, r := range x {
		out = append(out, r...)
	}
	return out
}

func TestParseAttention(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Attention
		ok   bool
	}{{"", AttnAuto, true}, {"auto", AttnAuto, true}, {"gemm", AttnGEMM, true}, {"flash", AttnFlash, true}, {"sdpa", 0, false}} {
		got, err := ParseAttention(c.in)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("ParseAttention(%q) = %v, %v", c.in, got, err)
		}
		if c.ok && c.in != "" && got.String() != c.in {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
}

// backwardOn opens an engine on m with o, installs ad, runs one Backward of (b, w) and closes the
// engine; it returns the result, the engine's memory report and its MemoryEstimate for b.
func backwardOn(t *testing.T, m *lora.Model, o Options, ad *lora.Adapter, b *lora.Batch, w [][]float32) (*lora.Result, Memory, int64) {
	t.Helper()
	e, err := Open(m, o)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.SetAdapter(ad); err != nil {
		t.Fatal(err)
	}
	res, err := e.Backward(b, w)
	if err != nil {
		t.Fatalf("%+v: %v", o, err)
	}
	est, err := e.MemoryEstimate(b)
	if err != nil {
		t.Fatal(err)
	}
	return res, e.Memory(), est
}

// TestFlatAdapter: vz_set_adapter's layout (present pairs in (layer, target) order, A then B), and
// the upload buffer is reused when it has the room.
func TestFlatAdapter(t *testing.T) {
	c := tinyConfig("llama")
	ad, err := lora.NewAdapter(c, lora.AdapterOptions{Rank: 2, Alpha: 4, Seed: 3, Targets: []string{"attn_v", "ffn_up"}})
	if err != nil {
		t.Fatal(err)
	}
	present, flat, pairs := flatAdapter(ad, c.NLayer, nil)
	var want []float32
	for il := 0; il < c.NLayer; il++ {
		for ti, name := range lora.Targets {
			p := ad.Lookup(il, name)
			if (p != nil) != (present[il*nTarget+ti] == 1) {
				t.Fatalf("present[%d][%s] = %d", il, name, present[il*nTarget+ti])
			}
			if p != nil {
				want = append(append(want, p.A...), p.B...)
			}
		}
	}
	if len(pairs) != 2*c.NLayer || !slices.Equal(flat, want) {
		t.Fatalf("%d pairs, flat layout differs from (layer, target) order with A then B", len(pairs))
	}
	_, again, _ := flatAdapter(ad, c.NLayer, flat)
	if &again[0] != &flat[0] || !slices.Equal(again, want) {
		t.Error("the upload buffer was not reused")
	}
}

// cpuBackward is the CPU reference's Backward of (b, w) with adapter ad.
func cpuBackward(t *testing.T, m *lora.Model, ad *lora.Adapter, b *lora.Batch, w [][]float32, threads int) *lora.Result {
	t.Helper()
	cpu := lora.NewCPU(m, lora.Options{Threads: threads})
	if err := cpu.SetAdapter(ad); err != nil {
		t.Fatal(err)
	}
	ref, err := cpu.Backward(b, w)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}
