package lora

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ollama/ollama/fs/ggml"
)

func requireSameAdapter(t *testing.T, want, got *Adapter, exact bool) {
	t.Helper()
	if got.Arch != want.Arch || got.Rank != want.Rank || got.Alpha != want.Alpha || len(got.Pairs) != len(want.Pairs) {
		t.Fatalf("adapter header: got %s rank %d alpha %g pairs %d, want %s %d %g %d", got.Arch, got.Rank, got.Alpha, len(got.Pairs), want.Arch, want.Rank, want.Alpha, len(want.Pairs))
	}
	for i, p := range want.Pairs {
		q := got.Pairs[i]
		if q.Name != p.Name || q.In != p.In || q.Out != p.Out {
			t.Fatalf("pair %d: got %s %dx%d, want %s %dx%d", i, q.Name, q.In, q.Out, p.Name, p.In, p.Out)
		}
		for k, pair := range [][2][]float32{{p.A, q.A}, {p.B, q.B}} {
			for j := range pair[0] {
				a, b := pair[0][j], pair[1][j]
				if exact && math.Float32bits(a) != math.Float32bits(b) || !exact && math.Abs(float64(a-b)) > 1e-3*math.Abs(float64(a))+1e-7 {
					t.Fatalf("%s %c[%d]: got %g, want %g", p.Name, "AB"[k], j, b, a)
				}
			}
		}
	}
}

// TestAdapterGGUFRoundTrip: write and read back gives identical tensors (F32), or F16-rounded ones.
func TestAdapterGGUFRoundTrip(t *testing.T) {
	for _, arch := range []string{"llama", "qwen2"} {
		c := tinyConfig(arch)
		ad := randomAdapter(t, c, 4, 16, 1)
		for _, kind := range []uint32{TypeF32, TypeF16} {
			p := tempPath(t, "a.gguf")
			if err := ad.WriteGGUF(p, kind); err != nil {
				t.Fatal(err)
			}
			got, err := ReadAdapterGGUF(p, c)
			if err != nil {
				t.Fatal(err)
			}
			requireSameAdapter(t, ad, got, kind == TypeF32)
		}
	}
}

// TestAdapterPEFTRoundTrip: write and read back gives identical tensors; for llama the file holds
// B of q/k un-permuted (HF row order), for qwen2 as is.
func TestAdapterPEFTRoundTrip(t *testing.T) {
	for _, arch := range []string{"llama", "qwen2"} {
		t.Run(arch, func(t *testing.T) {
			c := tinyConfig(arch)
			ad := randomAdapter(t, c, 4, 16, 1)
			dir := filepath.Join(t.TempDir(), "peft")
			if err := ad.WritePEFT(dir, c, "test/base", ""); err != nil {
				t.Fatal(err)
			}
			got, err := ReadPEFT(dir, c)
			if err != nil {
				t.Fatal(err)
			}
			requireSameAdapter(t, ad, got, true)
			ts, meta, err := readSafetensors(filepath.Join(dir, "adapter_model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			if meta["format"] != "pt" {
				t.Fatalf("metadata %v", meta)
			}
			q := ad.Lookup(1, "attn_q")
			raw := ts["base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"].Data
			want := q.B
			if arch == "llama" {
				want = permuteRows(q.B, c.NHead, c.HeadDim, ad.Rank, true)
				if slicesEqual(want, q.B) {
					t.Fatal("permutation is the identity: the test would prove nothing")
				}
			}
			if !slicesEqual(raw, want) {
				t.Fatalf("%s q_proj lora_B in the file is not in HF row order", arch)
			}
			if !slicesEqual(ts["base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"].Data, ad.Lookup(0, "ffn_down").A) {
				t.Fatal("down_proj lora_A differs")
			}
			js, _ := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
			for _, s := range []string{`"r": 4`, `"lora_alpha": 16`, `"q_proj"`, `"down_proj"`, `"peft_type": "LORA"`} {
				if !strings.Contains(string(js), s) {
					t.Fatalf("adapter_config.json lacks %s:\n%s", s, js)
				}
			}
		})
	}
}

// TestLlamaPermutationMatchesRope: the q/k row permutation is the one that turns HF's rotate_half
// RoPE (NEOX halves) into llama.cpp's adjacent-pair RoPE: rope_norm(P x) = P rope_neox(x). This pins
// the direction of permuteRows, which the PEFT export relies on.
func TestLlamaPermutationMatchesRope(t *testing.T) {
	c := tinyConfig("llama")
	heads, hd := 3, c.HeadDim
	r := rand.New(rand.NewPCG(3, 3))
	x := make([]float32, heads*hd)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	tab := newRopeTable(c, []int32{7}, c.RopeBase, c.RopeScale)
	neox := append([]float32(nil), x...)
	ropeApply(neox, tab, 1, heads, hd, RopeNeox, false)
	norm := permuteRows(x, heads, hd, 1, false)
	ropeApply(norm, tab, 1, heads, hd, RopeNorm, false)
	want := permuteRows(neox, heads, hd, 1, false)
	for i := range want {
		if math.Abs(float64(want[i]-norm[i])) > 1e-6 {
			t.Fatalf("element %d: rope_norm(P x) %g != P rope_neox(x) %g", i, norm[i], want[i])
		}
	}
	back := permuteRows(permuteRows(x, heads, hd, 1, false), heads, hd, 1, true)
	if !slicesEqual(back, x) {
		t.Fatal("inverse permutation does not undo the permutation")
	}
}

// TestBadInput: clear errors, never a panic.
func TestBadInput(t *testing.T) {
	llama := tinyConfig("llama")
	check := func(t *testing.T, err error, want ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("no error, want one mentioning %q", want)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("error %q does not mention %q", err, w)
			}
		}
	}
	t.Run("unsupported architecture", func(t *testing.T) {
		p := tempPath(t, "phi3.gguf")
		m := RandomModel(tinyConfig("llama"), 1) // llama tensors, but general.architecture phi3
		m.Cfg.Arch = "phi3"
		writeModelGGUF(t, p, m, TypeF32)
		_, err := LoadModel(p)
		check(t, err, p, `unsupported architecture "phi3"`, "gemma3, llama, qwen2, qwen2vl, qwen3")
	})
	t.Run("rank <= 0", func(t *testing.T) {
		for _, r := range []int{0, -2} {
			_, err := NewAdapter(llama, AdapterOptions{Rank: r})
			check(t, err, "rank")
		}
	})
	t.Run("unknown target", func(t *testing.T) {
		_, err := NewAdapter(llama, AdapterOptions{Rank: 2, Targets: []string{"attn_q", "attn_qkv"}})
		check(t, err, `"attn_qkv"`, "does not exist")
	})
	t.Run("adapter for another model", func(t *testing.T) {
		other := llama
		other.NFF = 96
		ad := randomAdapter(t, other, 2, 2, 1)
		e := NewCPU(RandomModel(llama, 1), Options{})
		check(t, e.SetAdapter(ad), "blk.0.ffn_gate.weight", "another model")
		p := tempPath(t, "other.gguf")
		if err := ad.WriteGGUF(p, TypeF32); err != nil {
			t.Fatal(err)
		}
		_, err := ReadAdapterGGUF(p, llama)
		check(t, err, p, "another model")
		dir := filepath.Join(t.TempDir(), "peft")
		if err := ad.WritePEFT(dir, other, "", ""); err != nil {
			t.Fatal(err)
		}
		_, err = ReadPEFT(dir, llama)
		check(t, err, "adapter_model.safetensors", "another model")
		_, err = ReadAdapterGGUF(p, tinyConfig("qwen2"))
		check(t, err, `architecture "llama"`, `"qwen2"`)
		deeper := llama
		deeper.NLayer = 3
		dp := tempPath(t, "deeper.gguf")
		if err := randomAdapter(t, deeper, 2, 2, 1).WriteGGUF(dp, TypeF32); err != nil {
			t.Fatal(err)
		}
		_, err = ReadAdapterGGUF(dp, llama)
		check(t, err, dp, "blk.2.", "model has 2 layers")
	})
	t.Run("model file problems", func(t *testing.T) {
		_, err := LoadModel(filepath.Join(t.TempDir(), "missing.gguf"))
		check(t, err, "missing.gguf")
		p := tempPath(t, "junk.gguf")
		os.WriteFile(p, []byte("not a gguf file at all"), 0o644)
		_, err = LoadModel(p)
		check(t, err, p)
		ap := tempPath(t, "adapter.gguf")
		randomAdapter(t, llama, 2, 2, 1).WriteGGUF(ap, TypeF32)
		_, err = LoadModel(ap)
		check(t, err, ap, "adapter")
		// llama.cpp's llama arch applies an optional attn_output bias; the engine has none and
		// used to drop it silently.
		bp := tempPath(t, "bias.gguf")
		writeModelGGUF(t, bp, RandomModel(llama, 1), TypeF32, &ggml.Tensor{Name: "blk.1.attn_output.bias", Kind: TypeF32,
			Shape: []uint64{uint64(llama.NEmbd)}, WriterTo: rawWriter(f32Bytes(make([]float32, llama.NEmbd)))})
		_, err = LoadModel(bp)
		check(t, err, bp, "blk.1.attn_output.bias", "not supported")
	})
	t.Run("bad batches", func(t *testing.T) {
		e := NewCPU(RandomModel(llama, 1), Options{})
		for _, tc := range []struct {
			b    Batch
			want string
		}{
			{Batch{}, "no sequences"},
			{Batch{Seqs: []Sequence{{Tokens: []int32{1, 9999}}}}, "outside vocabulary"},
			{Batch{Seqs: []Sequence{{Tokens: []int32{1, 2}, Mask: []bool{true, false}}}}, "token 0"},
			{Batch{Seqs: []Sequence{{Tokens: []int32{1, 2}, Mask: []bool{false}}}}, "mask"},
			{Batch{Seqs: []Sequence{{Tokens: []int32{1, 2}, Embeds: []EmbedSpan{{Pos: 1, Rows: make([]float32, 2*llama.NEmbd)}}}}}, "outside"},
			{Batch{Seqs: []Sequence{{Tokens: []int32{1, 2}, Embeds: []EmbedSpan{{Pos: 0, Rows: make([]float32, 5)}}}}}, "n_embd"},
			{Batch{Seqs: []Sequence{{Tokens: []int32{1, 2}}}, Temperature: 1e-45}, "too small"}, // used to give NaN log-probs
		} {
			_, err := e.LogProbs(&tc.b)
			check(t, err, tc.want)
		}
		_, err := e.Backward(&Batch{Seqs: []Sequence{{Tokens: []int32{1, 2}}}}, [][]float32{{0}})
		check(t, err, "weights")
	})
}

// TestReadConfigMatchesLoad: the header-only config equals the one LoadModel derives.
func TestReadConfigMatchesLoad(t *testing.T) {
	for _, arch := range []string{"llama", "qwen2"} {
		p := tempPath(t, arch+".gguf")
		writeModelGGUF(t, p, RandomModel(tinyConfig(arch), 1), TypeF32)
		c, err := ReadConfig(p)
		if err != nil {
			t.Fatal(err)
		}
		m, err := LoadModel(p)
		if err != nil {
			t.Fatal(err)
		}
		want := m.Cfg
		if c.Arch != want.Arch || c.NLayer != want.NLayer || c.NEmbd != want.NEmbd || c.NVocab != want.NVocab ||
			c.HeadDim != want.HeadDim || c.NHeadKV != want.NHeadKV || c.TiedOutput != want.TiedOutput ||
			c.HasQKVBias != want.HasQKVBias || c.RopeBase != want.RopeBase || c.Rope != want.Rope {
			t.Fatalf("ReadConfig %+v, LoadModel %+v", c, want)
		}
	}
}

// TestZeroAlphaScalesByOne: llama.cpp (and export) apply an adapter whose alpha is 0 at scale 1
// rather than alpha/rank; the engine used to apply it at scale 0 (no effect, zero gradients).
func TestZeroAlphaScalesByOne(t *testing.T) {
	c := tinyConfig("llama")
	ad := randomAdapter(t, c, 4, 4, 1) // alpha = rank: scale 1
	zero := ad.Clone()
	zero.Alpha = 0
	if s := zero.Scale(); s != 1 {
		t.Fatalf("alpha 0: scale %v, want 1 (llama.cpp)", s)
	}
	m := RandomModel(c, 1)
	b, w := groupBatch(c, 2, 1)
	lp := func(a *Adapter) [][]float32 {
		e := NewCPU(m, Options{})
		if err := e.SetAdapter(a); err != nil {
			t.Fatal(err)
		}
		r, err := e.Backward(b, w)
		if err != nil {
			t.Fatal(err)
		}
		return r.LogProbs
	}
	if got, want := lp(zero), lp(ad); !reflect.DeepEqual(got, want) {
		t.Fatal("alpha 0 does not act as scale 1")
	}
	// A GGUF with alpha 0 reads back with the same effect; PEFT gets lora_alpha = r.
	p := tempPath(t, "zero.gguf")
	if err := zero.WriteGGUF(p, TypeF32); err != nil {
		t.Fatal(err)
	}
	got, err := ReadAdapterGGUF(p, c)
	if err != nil {
		t.Fatal(err)
	}
	if got.Scale() != 1 {
		t.Fatalf("read back: scale %v", got.Scale())
	}
	// Without the key llama.cpp takes alpha 0 too (the rollout engine loads such files).
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	g, err := ggml.Decode(f, -1)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	kv := g.KV()
	delete(kv, "adapter.lora.alpha")
	delete(kv, "general.parameter_count")
	var ts []*ggml.Tensor
	for _, pr := range zero.Pairs {
		ts = append(ts,
			&ggml.Tensor{Name: pr.Name + ".lora_a", Kind: TypeF32, Shape: []uint64{uint64(pr.In), uint64(zero.Rank)}, WriterTo: rawWriter(f32Bytes(pr.A))},
			&ggml.Tensor{Name: pr.Name + ".lora_b", Kind: TypeF32, Shape: []uint64{uint64(zero.Rank), uint64(pr.Out)}, WriterTo: rawWriter(f32Bytes(pr.B))})
	}
	noAlpha := tempPath(t, "noalpha.gguf")
	nf, err := os.Create(noAlpha)
	if err != nil {
		t.Fatal(err)
	}
	if err := ggml.WriteGGUF(nf, kv, ts); err != nil {
		t.Fatal(err)
	}
	nf.Close()
	if got, err = ReadAdapterGGUF(noAlpha, c); err != nil {
		t.Fatalf("adapter without adapter.lora.alpha: %v", err)
	}
	if got.Scale() != 1 {
		t.Fatalf("adapter without adapter.lora.alpha: scale %v", got.Scale())
	}
	dir := filepath.Join(t.TempDir(), "peft")
	if err := zero.WritePEFT(dir, c, "", ""); err != nil {
		t.Fatal(err)
	}
	if got, err = ReadPEFT(dir, c); err != nil || got.Scale() != 1 {
		t.Fatalf("PEFT round trip: scale %v, error %v", got.Scale(), err)
	}
	// PEFT itself scales by lora_alpha/r: a config with lora_alpha 0 would have no effect at all.
	js, _ := os.ReadFile(filepath.Join(dir, "adapter_config.json"))
	js = []byte(strings.Replace(string(js), `"lora_alpha": 4`, `"lora_alpha": 0`, 1))
	if err := os.WriteFile(filepath.Join(dir, "adapter_config.json"), js, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPEFT(dir, c); err == nil || !strings.Contains(err.Error(), "lora_alpha is 0") {
		t.Fatalf("lora_alpha 0: error %v", err)
	}
}

// PEFT matches target_modules by name, so a VLM adapter can hold LoRA weights of the vision
// tower's q_proj etc.; their "...layers.N.self_attn.k_proj" paths used to pass for decoder layers
// (silently adapting decoder layer N with vision weights).
func TestReadPEFTRejectsVisionTower(t *testing.T) {
	c := tinyConfig("llama")
	ad, err := NewAdapter(c, AdapterOptions{Rank: 2, Targets: []string{"attn_q"}, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "peft")
	if err := ad.WritePEFT(dir, c, "", ""); err != nil {
		t.Fatal(err)
	}
	st := filepath.Join(dir, "adapter_model.safetensors")
	ts, meta, err := readSafetensors(st)
	if err != nil {
		t.Fatal(err)
	}
	var list []stTensor
	for _, t := range ts {
		list = append(list, t)
	}
	in, out, _ := c.LinearShape("attn_k")
	vis := "base_model.model.vision_tower.vision_model.encoder.layers.0.self_attn.k_proj"
	list = append(list,
		stTensor{Name: vis + ".lora_A.weight", Shape: []int{2, in}, Data: make([]float32, 2*in)},
		stTensor{Name: vis + ".lora_B.weight", Shape: []int{out, 2}, Data: make([]float32, 2*out)})
	if err := writeSafetensors(st, list, meta); err != nil {
		t.Fatal(err)
	}
	_, err = ReadPEFT(dir, c)
	if err == nil || !strings.Contains(err.Error(), "vision tower") || !strings.Contains(err.Error(), vis) {
		t.Fatalf("error %v, want one naming the vision-tower tensor", err)
	}
}
