package cuda

import (
	"slices"
	"testing"

	"github.com/vzlocal/vzlocal/lora"
)

// TestKeepLayers: keeping blocks' activations from the forward (Options.KeepLayers: none, the
// first, all, as many as fit) must not change a single bit of the result, since the kept values
// are the ones a recomputation would produce (cuBLAS is deterministic on one stream, and the
// materialized attention has no atomics). F32 and BF16, tiny model, GRPO-shaped batch; the
// kept blocks must also show in the workspace (MemoryEstimate grows with KeepLayers).
func TestKeepLayers(t *testing.T) {
	needGPU(t)
	m := tinyModel(t)
	ad := randomAdapter(t, m.Cfg, 8, 7)
	b, w := groupBatch(m.Cfg, 3, 12, 5, 11)
	L := m.Cfg.NLayer
	for _, prec := range []Precision{F32, BF16} {
		var ref *lora.Result
		var refEst, refWs int64
		for _, keep := range []int{0, 1, L, -1} {
			res, mem, est := backwardOn(t, m, Options{Precision: prec, Attention: AttnGEMM, KeepLayers: keep}, ad, b, w)
			t.Logf("%s keep=%d: estimate %.2f MiB, workspace %.2f MiB", prec, keep, mb(est), mb(mem.Workspace))
			if keep == 0 {
				ref, refEst, refWs = res, est, mem.Workspace
				continue
			}
			if res.Loss != ref.Loss || !slices.Equal(flat2(res.LogProbs), flat2(ref.LogProbs)) {
				t.Errorf("%s keep=%d: log-probs or loss differ from keep=0", prec, keep)
			}
			for i, p := range ref.Grads.Pairs {
				q := res.Grads.Pairs[i]
				if !slices.Equal(p.A, q.A) || !slices.Equal(p.B, q.B) {
					t.Errorf("%s keep=%d: gradient of %s differs from keep=0", prec, keep, p.Name)
					break
				}
			}
			if keep > 0 && !(est > refEst) {
				t.Errorf("%s keep=%d: estimate %d not above keep=0's %d", prec, keep, est, refEst)
			}
			if keep == -1 && !(mem.Workspace > refWs) {
				t.Errorf("keep=-1 kept nothing on a GPU with room for the tiny model (workspace %d)", mem.Workspace)
			}
		}
	}
}

// TestAdapterRemoveRestore: removing the adapter scores with the base model (as the CPU engine
// does), and installing the same adapter again reuses the kept buffers (no new device memory)
// and gives bit-identical log-probs.
func TestAdapterRemoveRestore(t *testing.T) {
	needGPU(t)
	m := tinyModel(t)
	ad := randomAdapter(t, m.Cfg, 8, 7)
	b, _ := groupBatch(m.Cfg, 3, 12, 5, 11)
	cpu := lora.NewCPU(m, lora.Options{Threads: 2})
	base, err := cpu.LogProbs(b)
	if err != nil {
		t.Fatal(err)
	}
	e := openEngine(t, m, F32)
	if err := e.SetAdapter(ad); err != nil {
		t.Fatal(err)
	}
	with, err := e.LogProbs(b)
	if err != nil {
		t.Fatal(err)
	}
	mem := e.Memory()
	if err := e.SetAdapter(nil); err != nil {
		t.Fatal(err)
	}
	without, err := e.LogProbs(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, mx := relErr(flat2(without), flat2(base)); !(mx <= tolerances["tiny"][F32].lpMaxAbs) {
		t.Errorf("without the adapter: max |diff| %.3g from the CPU's base log-probs", mx)
	}
	if err := e.SetAdapter(ad); err != nil {
		t.Fatal(err)
	}
	again, err := e.LogProbs(b)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(flat2(again), flat2(with)) {
		t.Error("log-probs with the restored adapter differ from the first time")
	}
	if now := e.Memory(); now.Peak != mem.Peak || now.Adapter != mem.Adapter {
		t.Errorf("restoring the adapter allocated: peak %d -> %d, adapter %d -> %d", mem.Peak, now.Peak, mem.Adapter, now.Adapter)
	}
}
