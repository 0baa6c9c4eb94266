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
	cpu := lora.NewCPU(m, lora.Options{Threads: 4})
	if err := cpu.SetAdapter(ad); err != nil {
		t.Fatal(err)
	}
	ref, err := cpu.Backward(b, w)
	if err != nil {
		t.Fatal(err)
	}
	e := openEngine(t, m, F32)
	if err := e.SetAdapter(ad); err != nil {
		t.Fatal(err)
	}
	res, err := e.Backward(b, w)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ref.Grads.Pairs {
		q := res.Grads.Pairs[i]
		relA, _ := relErr(q.A, p.A)
		relB, _ := relErr(q.B, p.B)
		if !(relA <= 1e-4) || !(relB <= 1e-4) {
			t.Errorf("gradient of %s with layer 0 not adapted: rel A %.3g, B %.3g", p.Name, relA, relB)
		}
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
