package cuda

import (
	"strings"
	"testing"

	"github.com/vzlocal/vzlocal/lora"
)

// TestPassProtocol: a pass's three calls (vz_run_begin, vz_run_wait_layer per layer, vz_run_end)
// refuse what would break them, and an adapter that leaves a layer out (nothing of its own to send
// down while the backward goes on) still gives the CPU engine's gradients.
func TestPassProtocol(t *testing.T) {
	needGPU(t)
	m := tinyModel(t)
	full := randomAdapter(t, m.Cfg, 8, 3)
	ad := &lora.Adapter{Arch: full.Arch, Rank: full.Rank, Alpha: full.Alpha, Targets: full.Targets}
	for _, p := range full.Pairs {
		if p.Layer != 0 {
			ad.Pairs = append(ad.Pairs, p)
		}
	}
	b, w := groupBatch(m.Cfg, 2, 9, 4, 5)
	ref := cpuBackward(t, m, ad, b, w, 4)
	e := openEngine(t, m, F32)
	if err := e.SetAdapter(ad); err != nil {
		t.Fatal(err)
	}
	res, err := e.Backward(b, w)
	if err != nil {
		t.Fatal(err)
	}
	if d := diffResults(res, ref); !(d.grad <= tolerances["tiny"][F32].grad) {
		t.Errorf("layer 0 not adapted: %s", d)
	}

	// The workspace released between passes comes back, with the same results.
	if ws := e.Memory().Workspace; ws == 0 {
		t.Error("no workspace after a backward")
	}
	if err := e.ReleaseWorkspace(); err != nil {
		t.Fatal(err)
	}
	if ws := e.Memory().Workspace; ws != 0 {
		t.Errorf("workspace %d bytes after ReleaseWorkspace", ws)
	}
	again, err := e.Backward(b, w)
	if err != nil {
		t.Fatal(err)
	}
	if again.Loss != res.Loss {
		t.Errorf("loss %v after the workspace came back, %v before", again.Loss, res.Loss)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	L := m.Cfg.NLayer
	pk, err := e.pack(b, w)
	if err != nil {
		t.Fatal(err)
	}
	tw := make([]float32, len(pk.tRow))
	for i := range tw {
		tw[i] = w[pk.tSeq[i]][pk.tIdx[i]]
	}
	lp := make([]float32, len(pk.tRow))
	h := e.h
	call := func(name string, rc func() error, want string) {
		t.Helper()
		if err := rc(); want == "" && err != nil {
			t.Errorf("%s: %v", name, err)
		} else if want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want an error containing %q", name, err, want)
		}
	}
	begin := func(backward bool) error {
		return cRunBegin(h, pk, tw, backward)
	}
	call("end before any begin", func() error { return cRunEnd(h, lp) }, "no pass in flight")
	call("begin", func() error { return begin(true) }, "")
	call("set adapter during a pass", func() error { return cSetAdapter(h, 0, 0, nil, nil) }, "in flight")
	call("release the workspace during a pass", func() error { return cReleaseWorkspace(h) }, "in flight")
	call("second begin", func() error { return begin(true) }, "in flight")
	call("wait for a layer past the last", func() error { return cRunWaitLayer(h, L) }, "wait for layer")
	for l := L - 1; l >= 0; l-- {
		call("wait", func() error { return cRunWaitLayer(h, l) }, "")
	}
	call("end", func() error { return cRunEnd(h, lp) }, "")
	call("end twice", func() error { return cRunEnd(h, lp) }, "no pass in flight")
	call("log-probs begin", func() error { return begin(false) }, "")
	call("wait in a pass without a backward", func() error { return cRunWaitLayer(h, 0) }, "no backward pass")
	call("log-probs end", func() error { return cRunEnd(h, lp) }, "")
	// A failed begin leaves nothing in flight: the engine goes on.
	pk.seg[1] = int32(pk.n + 5)
	call("begin with a segment past the rows", func() error { return begin(true) }, "segment")
	call("end after a failed begin", func() error { return cRunEnd(h, lp) }, "no pass in flight")
}

// TestSharedTargets: sequences that share their prompt and first completion tokens score the same
// token from the same packed row more than once, with different weights (the head kernels sum
// such targets before rounding); the gradients and loss must still be the CPU engine's.
func TestSharedTargets(t *testing.T) {
	needGPU(t)
	m := tinyModel(t)
	ad := randomAdapter(t, m.Cfg, 8, 5)
	prompt := []int32{5, 0, 3, 9, 2, 4, 1, 6}
	b := &lora.Batch{}
	var w [][]float32
	for s, tail := range [][]int32{{7, 8, 9}, {7, 10}, {7, 8, 11, 12}} {
		seq := lora.Sequence{Tokens: append(append([]int32(nil), prompt...), tail...)}
		seq.Mask = make([]bool, len(seq.Tokens))
		ws := make([]float32, len(seq.Tokens))
		for i := len(prompt); i < len(seq.Tokens); i++ {
			seq.Mask[i] = true
			ws[i] = float32(s+1) * []float32{1, -0.5, 0.75}[s]
		}
		b.Seqs = append(b.Seqs, seq)
		w = append(w, ws)
	}
	ref := cpuBackward(t, m, ad, b, w, 4)
	for _, prec := range []Precision{F32, BF16} {
		tol := tolerances["tiny"][prec]
		res, _, _ := backwardOn(t, m, Options{Precision: prec}, ad, b, w)
		d := diffResults(res, ref)
		t.Logf("%s: %s", prec, d)
		if !(d.lossRel <= tol.loss) || !(d.grad <= tol.grad) {
			t.Errorf("%s: beyond the tolerances (loss %.3g, gradients %.3g)", prec, tol.loss, tol.grad)
		}
	}
}
