package export

import (
	"fmt"
	"strings"
)

// Adapter is a LoRA adapter in llama.cpp's layout, as the exporters need it: which base tensors it
// changes and by how much. Package lora reads and writes the files; this is the description the
// merged writer and the checks work from.
type Adapter struct {
	// Arch is the llama.cpp architecture of the base the adapter was trained on
	// (general.architecture of the adapter file).
	Arch string
	// Alpha is adapter.lora.alpha: llama.cpp applies scale = userScale * Alpha / rank.
	Alpha float32
	// Pairs are the adapted tensors.
	Pairs []Pair
}

// Pair is one adapted base tensor with its two factors, in ggml ne order exactly as stored in a
// llama.cpp LoRA GGUF (shared/spec/llama-cpp-notes.md §2.3):
//
//	linear W ne=[in,out]:            A ne=[in,r],  B ne=[r,out];   ΔW[o][i] = s·Σk B[o][k]·A[k][i]
//	token_embd W ne=[n_embd,n_vocab]: A ne=[r,n_vocab], B ne=[r,n_embd]; ΔW[v][e] = s·Σk B[e][k]·A[v][k]
//
// with s = Alpha/r and r = B's ne[0] (llama.cpp takes the rank from B).
type Pair struct {
	Base   string // base tensor name, e.g. "blk.0.attn_q.weight"
	A, B   []float32
	AShape [2]int // ne
	BShape [2]int // ne
}

// Rank is the adapter rank of the pair (B's ne[0], as llama.cpp reads it).
func (p Pair) Rank() int { return p.BShape[0] }

// isTokenEmbd reports whether the pair adapts the token embedding, whose factors llama.cpp stores
// flipped (A is gathered by token id).
func (p Pair) isTokenEmbd() bool { return p.Base == "token_embd.weight" }

// Scale is the factor llama.cpp multiplies B·A by when the adapter is applied at user scale 1.
func (a *Adapter) Scale(p Pair) float32 {
	if a.Alpha == 0 {
		return 1 // llama.cpp: without alpha the scale is not divided by the rank
	}
	return a.Alpha / float32(p.Rank())
}

// check validates the adapter's own consistency (factor sizes and ranks).
func (a *Adapter) check() error {
	if a.Arch == "" {
		return fmt.Errorf("adapter has no architecture")
	}
	if len(a.Pairs) == 0 {
		return fmt.Errorf("adapter has no tensors")
	}
	seen := map[string]bool{}
	for _, p := range a.Pairs {
		if seen[p.Base] {
			return fmt.Errorf("adapter: tensor %s appears twice", p.Base)
		}
		seen[p.Base] = true
		if strings.HasSuffix(p.Base, "_norm.weight") {
			return fmt.Errorf("adapter: tensor %s: llama.cpp skips LoRA on norms", p.Base)
		}
		if len(p.A) != p.AShape[0]*p.AShape[1] || len(p.B) != p.BShape[0]*p.BShape[1] {
			return fmt.Errorf("adapter: tensor %s: factor data does not match shapes A%v B%v", p.Base, p.AShape, p.BShape)
		}
		if p.AShape[0] <= 0 || p.AShape[1] <= 0 || p.BShape[0] <= 0 || p.BShape[1] <= 0 {
			return fmt.Errorf("adapter: tensor %s: empty factor A%v B%v", p.Base, p.AShape, p.BShape)
		}
		if p.isTokenEmbd() {
			if p.AShape[0] != p.BShape[0] {
				return fmt.Errorf("adapter: tensor %s: ranks differ (A ne %v, B ne %v)", p.Base, p.AShape, p.BShape)
			}
		} else if p.AShape[1] != p.BShape[0] {
			return fmt.Errorf("adapter: tensor %s: lora_a ne[1]=%d != lora_b ne[0]=%d (rank)", p.Base, p.AShape[1], p.BShape[0])
		}
	}
	return nil
}

// CheckBase verifies that the adapter fits the base model file: same architecture, every adapted
// tensor present as a 2-D weight with matching shape. It runs before anything is written or
// uploaded, so a mismatched pair fails with a message instead of a llama.cpp abort at load time.
func (a *Adapter) CheckBase(basePath string) error {
	base, err := readGGUF(basePath)
	if err != nil {
		return fmt.Errorf("base model: %w", err)
	}
	return a.checkBase(base)
}

func (a *Adapter) checkBase(base *ggufFile) error {
	if err := a.check(); err != nil {
		return err
	}
	if arch := base.Arch(); arch != a.Arch {
		return fmt.Errorf("adapter is for architecture %q but base model %s is %q", a.Arch, base.Path, arch)
	}
	for _, p := range a.Pairs {
		w, ok := base.Tensor(p.Base)
		if !ok {
			return fmt.Errorf("adapter changes %s, which base model %s does not have (adapter for another model?)", p.Base, base.Path)
		}
		if len(w.Shape) != 2 {
			return fmt.Errorf("adapter changes %s, which is %d-D in %s", p.Base, len(w.Shape), base.Path)
		}
		in, out := int(w.Shape[0]), int(w.Shape[1])
		var ok2 bool
		if p.isTokenEmbd() {
			ok2 = in == p.BShape[1] && out == p.AShape[1]
		} else {
			ok2 = in == p.AShape[0] && out == p.BShape[1]
		}
		if !ok2 {
			return fmt.Errorf("adapter tensor %s (lora_a ne %v, lora_b ne %v) does not fit the base weight ne %v in %s (adapter for another model?)",
				p.Base, p.AShape, p.BShape, w.Shape, base.Path)
		}
	}
	return nil
}

// addDelta adds s·B·A (in W's layout, row-major [out][in]) to w, for rows [r0, r1).
func (p Pair) addDelta(w []float32, s float32, r0, r1 int) {
	if p.isTokenEmbd() {
		// W row v (token), column e: Σk B[e][k]·A[v][k].
		r, nEmbd := p.BShape[0], p.BShape[1]
		for v := r0; v < r1; v++ {
			row := w[v*nEmbd : (v+1)*nEmbd]
			a := p.A[v*r : (v+1)*r]
			for e := range row {
				b := p.B[e*r : (e+1)*r]
				var sum float32
				for k, ak := range a {
					sum += float32(b[k] * ak) // the conversion forbids FMA fusion: same bytes on every CPU
				}
				row[e] += float32(s * sum)
			}
		}
		return
	}
	in, r := p.AShape[0], p.AShape[1]
	for o := r0; o < r1; o++ {
		row := w[o*in : (o+1)*in]
		for k := 0; k < r; k++ {
			c := s * p.B[o*r+k]
			if c == 0 {
				continue
			}
			ak := p.A[k*in : (k+1)*in]
			for i, v := range ak {
				row[i] += float32(c * v) // no FMA fusion (see above)
			}
		}
	}
}
