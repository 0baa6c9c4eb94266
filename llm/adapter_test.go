package llm

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vzlocal/vzlocal/llm/testmodel"
)

// adapterFixture is the tiny llava model with two random rank-4 adapters and the two merged
// models (W + alpha/r·B·A) as ground truth.
type adapterFixture struct {
	text, mmproj     string
	lora1, lora2     string
	merged1, merged2 string
	l1, l2           *ggufFile
}

func newAdapterFixture(t *testing.T) adapterFixture {
	t.Helper()
	files := tinyModelFiles(t, "llava")
	dir := t.TempDir()
	text := readGGUF(t, files.Text)
	f := adapterFixture{text: files.Text, mmproj: files.MMProj}
	f.l1 = loraFile(t, text, 1, 4, 8)
	f.l2 = loraFile(t, text, 2, 4, 4)
	for _, x := range []struct {
		path *string
		g    *ggufFile
		name string
	}{
		{&f.lora1, f.l1, "lora1.gguf"}, {&f.lora2, f.l2, "lora2.gguf"},
		{&f.merged1, mergedFile(t, text, f.l1), "merged1.gguf"}, {&f.merged2, mergedFile(t, text, f.l2), "merged2.gguf"},
	} {
		*x.path = filepath.Join(dir, x.name)
		x.g.write(t, *x.path)
	}
	return f
}

// promptLogits returns the logits at every text row of a fixed image prompt plus completion.
func promptLogits(t *testing.T, m *Model) [][]float32 {
	t.Helper()
	p := chatPrompt(t, m, "Which image is the odd one?", testmodel.TestImage(40, 30, 9))
	out, err := m.Logits(p, []int32{40, 41, 42, 43})
	require.NoError(t, err)
	return out
}

func maxDiffRows(a, b [][]float32) float64 {
	d := 0.0
	for i := range a {
		if a[i] != nil {
			d = max(d, maxAbsDiff(a[i], b[i]))
		}
	}
	return d
}

// mergedTol bounds |logits(base + adapter) - logits(merged model)|: the adapter path computes
// W·x + s·B(A·x) in float32, the merged model (W + s·BA)·x, so they differ by rounding only.
const mergedTol = 1e-3

// Base + adapter must match the merged model, also after graph-shaping decodes of the base (the
// graph-reuse trap of llama-cpp-notes §1.5), after a swap to another adapter file, after an
// in-place rewrite of the tensors, and back at the base with scale 0 or no adapter.
func TestAdapterMatchesMergedModel(t *testing.T) {
	f := newAdapterFixture(t)
	opts := testOptions()
	want := map[string][][]float32{}
	for name, path := range map[string]string{"base": f.text, "merged1": f.merged1, "merged2": f.merged2} {
		m, err := Load(path, f.mmproj, opts)
		require.NoError(t, err)
		want[name] = promptLogits(t, m)
		m.Close()
	}
	require.Greater(t, maxDiffRows(want["base"], want["merged1"]), 100*mergedTol, "the adapter must matter")

	m := loadTiny(t, "llava", opts)
	require.Equal(t, want["base"], promptLogits(t, m)) // decode the base first: graphs exist now

	a1, err := m.SwapAdapter(f.lora1)
	require.NoError(t, err)
	d1 := maxDiffRows(want["merged1"], promptLogits(t, m))
	a2, err := m.SwapAdapter(f.lora2) // frees lora1
	require.NoError(t, err)
	d2 := maxDiffRows(want["merged2"], promptLogits(t, m))
	require.Nil(t, a1.c, "the swapped-out adapter is freed")

	require.NoError(t, m.SetAdapter(a2, 0))
	require.Equal(t, want["base"], promptLogits(t, m), "scale 0 is the base model")
	require.NoError(t, m.SetAdapter(nil, 0))
	require.Equal(t, want["base"], promptLogits(t, m), "no adapter is the base model")

	// In place: load lora1 once, then overwrite its tensors with lora2's values.
	a, err := m.LoadAdapter(f.lora1)
	require.NoError(t, err)
	require.NoError(t, m.SetAdapter(a, 1))
	require.Less(t, maxDiffRows(want["merged1"], promptLogits(t, m)), mergedTol)
	require.Equal(t, float32(8), a.Alpha())
	for _, tb := range f.l2.tensors {
		require.NoError(t, a.Update(tb.name, tb.f32(t)))
	}
	// alpha stays lora1's (8, rank 4), lora2 has alpha 4: scale 0.5 gives lora2's 4/4.
	require.NoError(t, m.SetAdapter(a, 0.5))
	dA := maxDiffRows(want["merged2"], promptLogits(t, m))
	got, err := a.Tensor(f.l2.tensors[0].name)
	require.NoError(t, err)
	require.Equal(t, f.l2.tensors[0].f32(t), got)
	t.Logf("max |logit diff| vs merged model: lora1 %.3g, lora2 after swap %.3g, lora2 in place %.3g", d1, d2, dA)
	require.Less(t, d1, mergedTol)
	require.Less(t, d2, mergedTol)
	require.Less(t, dA, mergedTol)

	name := f.l2.tensors[0].name
	require.ErrorContains(t, a.Update(name, []float32{1, 2}), "(256 values), got 2")
	require.ErrorContains(t, a.Update("blk.0.nope.weight.lora_a", nil), "has no tensor")
	a.Free()
	a2.Free()
	require.ErrorContains(t, a.Update(name, got), "freed")
	require.Equal(t, want["base"], promptLogits(t, m))
}

// Generate must also see the new weights: completions drawn after a swap use the adapter.
func TestGenerateUsesSwappedAdapter(t *testing.T) {
	f := newAdapterFixture(t)
	merged, err := Load(f.merged1, f.mmproj, testOptions())
	require.NoError(t, err)
	defer merged.Close()
	m := loadTiny(t, "llava", testOptions())
	image := testmodel.TestImage(40, 30, 10)
	s := Sampling{Temperature: 1, N: 4, MaxTokens: 8, Seed: 5}
	base, err := m.Generate(bg, chatPrompt(t, m, "Go.", image), s)
	require.NoError(t, err)
	_, err = m.SwapAdapter(f.lora1)
	require.NoError(t, err)
	got, err := m.Generate(bg, chatPrompt(t, m, "Go.", image), s)
	require.NoError(t, err)
	want, err := merged.Generate(bg, chatPrompt(t, merged, "Go.", image), s)
	require.NoError(t, err)
	require.NotEqual(t, base[0].Tokens, got[0].Tokens)
	for i := range want {
		require.Equal(t, want[i].Tokens, got[i].Tokens)
		for j := range want[i].LogProbs {
			require.InDelta(t, want[i].LogProbs[j], got[i].LogProbs[j], mergedTol)
		}
	}
}

func TestLoadAdapterRejectsBadFiles(t *testing.T) {
	f := newAdapterFixture(t)
	m := loadTiny(t, "llava", testOptions())
	dir := t.TempDir()
	write := func(name string, g *ggufFile) string {
		p := filepath.Join(dir, name)
		g.write(t, p)
		return p
	}
	withKV := func(k string, v any) *ggufFile {
		g := f.l1.clone()
		if v == nil {
			delete(g.kv, k)
		} else {
			g.kv[k] = v
		}
		return g
	}
	odd := f.l1.clone()
	odd.tensors = append(odd.tensors, &tensorBytes{name: "blk.0.attn_q.weight.extra", shape: []uint64{4}, data: make([]byte, 16)})
	half := f.l1.without(f.l1.tensors[0].name)
	cases := []struct{ name, path, problem string }{
		{"missing", filepath.Join(dir, "nope.gguf"), "does not exist"},
		{"model as adapter", f.text, `general.type is "", want "adapter"`},
		{"wrong arch", write("arch.gguf", withKV("general.architecture", "qwen2")), `made for architecture "qwen2", the model is "llama"`},
		{"alpha uint32", write("alpha.gguf", withKV("adapter.lora.alpha", uint32(8))), "adapter.lora.alpha has type uint32, want float32"},
		{"not lora", write("cvec.gguf", withKV("adapter.type", "control_vector")), `adapter.type is "control_vector"`},
		{"odd tensor", write("odd.gguf", odd), "is not a .lora_a or .lora_b tensor"},
		{"half pair", write("half.gguf", half), "has only one of .lora_a and .lora_b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := m.LoadAdapter(c.path)
			var fe *FileError
			require.True(t, errors.As(err, &fe), "want a FileError, got %v", err)
			require.Equal(t, "adapter", fe.Kind)
			require.Equal(t, c.path, fe.Path)
			require.Contains(t, fe.Problem, c.problem)
		})
	}
}

// rssBytes reads the resident set size from /proc/self/statm after a GC.
func rssBytes(t *testing.T) int64 {
	t.Helper()
	runtime.GC()
	b, err := os.ReadFile("/proc/self/statm")
	require.NoError(t, err)
	fields := strings.Fields(string(b))
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	require.NoError(t, err)
	return pages * int64(os.Getpagesize())
}

// swapRSSBound is the most RSS may grow over 1,000 swaps after a warm-up of 100. A leaked adapter
// per swap would cost its whole size each time (34 KB here: 34 MB over 1,000); what is
// allowed is allocator fragmentation, which levels off (cgo-notes §6.3).
const swapRSSBound = 8 << 20

func TestAdapterSwapsDoNotLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 swaps")
	}
	f := newAdapterFixture(t)
	m := loadTiny(t, "llava", testOptions())
	p := chatPrompt(t, m, "Go.", testmodel.TestImage(16, 16, 11))
	seq := [][]int32{{40, 41, 42}}
	st, err := os.Stat(f.lora1)
	require.NoError(t, err)
	cycle := func(i int) {
		path := f.lora1
		if i%2 == 1 {
			path = f.lora2
		}
		_, err := m.SwapAdapter(path)
		require.NoError(t, err)
		_, err = m.Score(bg, p, seq, Sampling{Temperature: 1})
		require.NoError(t, err)
	}
	for i := range 100 {
		cycle(i)
	}
	start := rssBytes(t)
	var marks []string
	for i := range 1000 {
		cycle(i)
		if (i+1)%250 == 0 {
			marks = append(marks, fmt.Sprintf("+%.2f MB", float64(rssBytes(t)-start)/(1<<20)))
		}
	}
	growth := rssBytes(t) - start
	t.Logf("adapter file %d KB; RSS %.1f MB at start, after 250/500/750/1000 swaps: %s", st.Size()>>10, float64(start)/(1<<20), strings.Join(marks, " "))
	require.Less(t, growth, int64(swapRSSBound))

	// In-place updates allocate nothing in llama.cpp; what grows is graph building and Go garbage.
	a, err := m.LoadAdapter(f.lora1)
	require.NoError(t, err)
	require.NoError(t, m.SetAdapter(a, 1))
	vals := map[string][]float32{}
	for _, tb := range f.l2.tensors {
		vals[tb.name] = tb.f32(t)
	}
	start = rssBytes(t)
	marks = marks[:0]
	for i := range 1000 {
		for name, v := range vals {
			require.NoError(t, a.Update(name, v))
		}
		_, err = m.Score(bg, p, seq, Sampling{Temperature: 1})
		require.NoError(t, err)
		if (i+1)%250 == 0 {
			marks = append(marks, fmt.Sprintf("+%.2f MB", float64(rssBytes(t)-start)/(1<<20)))
		}
	}
	growth = rssBytes(t) - start
	t.Logf("in-place updates of %d tensors, RSS after 250/500/750/1000: %s", len(vals), strings.Join(marks, " "))
	require.Less(t, growth, int64(swapRSSBound))
}

// f16MergedTol: with F16 adapter matrices ggml's CPU mul_mat also rounds the activations it
// multiplies them with to F16 (vec_dot_f16), about 1e-3 relative, so the logits differ from the
// merged F32 model by more than with F32 adapters (measured 8.8e-3 and 3.8e-3).
const f16MergedTol = 2e-2

// F16 adapters: loaded from a file, and rewritten in place from float32 (converted to F16).
func TestF16AdapterMatchesMergedModel(t *testing.T) {
	f := newAdapterFixture(t)
	dir := t.TempDir()
	text := readGGUF(t, f.text)
	h1, r1 := asF16(t, f.l1)
	h2, r2 := asF16(t, f.l2)
	paths := map[string]string{}
	for name, g := range map[string]*ggufFile{"h1": h1, "h2": h2, "m1": mergedFile(t, text, r1), "m2": mergedFile(t, text, r2)} {
		paths[name] = filepath.Join(dir, name+".gguf")
		g.write(t, paths[name])
	}
	want := map[string][][]float32{}
	for _, name := range []string{"m1", "m2"} {
		m, err := Load(paths[name], f.mmproj, testOptions())
		require.NoError(t, err)
		want[name] = promptLogits(t, m)
		m.Close()
	}
	m := loadTiny(t, "llava", testOptions())
	a, err := m.SwapAdapter(paths["h1"])
	require.NoError(t, err)
	d1 := maxDiffRows(want["m1"], promptLogits(t, m))
	for _, tb := range r2.tensors {
		require.NoError(t, a.Update(tb.name, tb.f32(t)))
	}
	require.NoError(t, m.SetAdapter(a, 0.5)) // alpha 8 of h1 vs 4 of h2, rank 4 both
	d2 := maxDiffRows(want["m2"], promptLogits(t, m))
	got, err := a.Tensor(r2.tensors[3].name)
	require.NoError(t, err)
	require.Equal(t, r2.tensors[3].f32(t), got, "F16 round trip of F16-exact values")
	t.Logf("F16 adapter vs merged: from file %.3g, rewritten in place %.3g", d1, d2)
	require.Less(t, d1, f16MergedTol)
	require.Less(t, d2, f16MergedTol)
	require.Greater(t, maxDiffRows(want["m1"], want["m2"]), 10*f16MergedTol, "the two adapters must differ")
}

// Close frees every adapter loaded, attached or not; their methods then fail cleanly.
func TestCloseFreesAdapters(t *testing.T) {
	f := newAdapterFixture(t)
	m, err := Load(f.text, f.mmproj, testOptions())
	require.NoError(t, err)
	a1, err := m.LoadAdapter(f.lora1)
	require.NoError(t, err)
	a2, err := m.SwapAdapter(f.lora2)
	require.NoError(t, err)
	require.Len(t, m.loaded, 2)
	name := f.l1.tensors[0].name
	vals := f.l1.tensors[0].f32(t)
	require.NoError(t, m.Close())
	require.Empty(t, m.loaded)
	require.ErrorContains(t, a1.Update(name, vals), "freed")
	require.ErrorContains(t, a2.Update(name, vals), "freed")
	_, err = a1.Tensor(name)
	require.Error(t, err)
	require.ErrorIs(t, m.SetAdapter(nil, 0), errClosed)
	_, err = m.Generate(bg, &Prompt{Tokens: []int32{1}, NPos: 1}, Sampling{})
	require.ErrorIs(t, err, errClosed)
}

// IsEOG and Adapter.Tensors read what Close and Free release, so they must wait for a call in
// progress like every other method (they used to read without the lock: a use-after-free of the
// vocabulary when racing Close).
func TestUnlockedReadersWaitForClose(t *testing.T) {
	f := newAdapterFixture(t)
	m, err := Load(f.text, f.mmproj, testOptions())
	require.NoError(t, err)
	a, err := m.LoadAdapter(f.lora1)
	require.NoError(t, err)
	eos := int32(testmodel.TokenID("<|im_end|>"))
	require.True(t, m.IsEOG(eos))
	m.mu.Lock() // a call in progress
	done := make(chan struct{})
	var eog bool
	var tensors map[string][2]int
	go func() {
		defer close(done)
		eog, tensors = m.IsEOG(eos), a.Tensors()
	}()
	select {
	case <-done:
		m.mu.Unlock()
		t.Fatal("IsEOG / Adapter.Tensors did not wait for the call in progress")
	case <-time.After(50 * time.Millisecond):
	}
	m.closeLocked() // what Close does, before the waiting readers may run
	m.mu.Unlock()
	<-done
	require.False(t, eog, "the model was closed meanwhile")
	require.Empty(t, tensors, "the adapter was freed meanwhile")
}

// A NaN or infinite scale used to be attached as is: every logit NaN, silently.
func TestSetAdapterRejectsNonFiniteScale(t *testing.T) {
	f := newAdapterFixture(t)
	m, err := Load(f.text, f.mmproj, testOptions())
	require.NoError(t, err)
	defer m.Close()
	a, err := m.LoadAdapter(f.lora1)
	require.NoError(t, err)
	for _, s := range []float64{math.NaN(), math.Inf(1)} {
		require.ErrorContains(t, m.SetAdapter(a, float32(s)), "not a finite number")
	}
	require.NoError(t, m.SetAdapter(a, 0.5))
}
