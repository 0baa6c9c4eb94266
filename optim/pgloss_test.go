package optim

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// Tolerance for hand-computed values: they are written to 6-7 significant digits.
const handTol = 1e-6

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

func checkWeights(t *testing.T, got [][]float64, want [][]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("weights: %d sequences, want %d", len(got), len(want))
	}
	for i := range want {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("weights[%d]: %d tokens, want %d", i, len(got[i]), len(want[i]))
		}
		for j := range want[i] {
			if !near(got[i][j], want[i][j], handTol) {
				t.Errorf("weights[%d][%d] = %.9g, want %.9g", i, j, got[i][j], want[i][j])
			}
		}
	}
}

// noIS is the plain objective: clip 0.2, no KL, no importance sampling.
func noIS(agg LossAgg) PGConfig {
	return PGConfig{Agg: agg, ClipLow: 0.2, ClipHigh: 0.2}
}

// Two sequences on the first update (rho = 1, so each kept token's loss is -A):
// a: A = 1, three tokens; b: A = -0.5, three tokens of which the last is masked.
func TestPGLossAggregationHand(t *testing.T) {
	batch := func() []PGSequence {
		return []PGSequence{
			{LogpNew: []float64{-1, -2, -0.5}, Advantage: 1},
			{LogpNew: []float64{-0.3, -0.7, -9}, Mask: []bool{true, true, false}, Advantage: -0.5},
		}
	}
	tests := []struct {
		name    string
		cfg     PGConfig
		loss    float64
		weights [][]float64
	}{
		// 1/2 * (-3/3) + 1/2 * (1/2) = -0.25; a: -1/(2*3), b: 0.5/(2*2).
		{"seq-mean-token-mean", noIS(AggSeqMeanTokenMean), -0.25, [][]float64{{-1.0 / 6, -1.0 / 6, -1.0 / 6}, {0.125, 0.125, 0}}},
		// (-3 + 1) / 5 kept tokens.
		{"token-mean", noIS(AggTokenMean), -0.4, [][]float64{{-0.2, -0.2, -0.2}, {0.1, 0.1, 0}}},
		// (-3 + 1) / (2 sequences * longest 3).
		{"sum-norm longest", noIS(AggSeqMeanTokenSumNorm), -1.0 / 3, [][]float64{{-1.0 / 6, -1.0 / 6, -1.0 / 6}, {1.0 / 12, 1.0 / 12, 0}}},
		// (-3 + 1) / (2 * 10).
		{"sum-norm fixed 10", func() PGConfig { c := noIS(AggSeqMeanTokenSumNorm); c.NormLen = 10; return c }(), -0.1, [][]float64{{-0.05, -0.05, -0.05}, {0.025, 0.025, 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := PGLoss(batch(), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !near(res.Loss, tc.loss, handTol) {
				t.Errorf("loss = %.9g, want %.9g", res.Loss, tc.loss)
			}
			checkWeights(t, res.Weights, tc.weights)
			if res.Stats.Tokens != 5 || res.Stats.KeptTokens != 5 || res.Stats.DroppedFrac != 0 {
				t.Errorf("stats = %+v, want 5 tokens, 5 kept, none dropped", res.Stats)
			}
		})
	}
}

// One token, logp_old = -1, eps 0.2. rho = e^0.5 = 1.6487213 (above 1.2) or e^-0.5 = 0.6065307
// (below 0.8).
func TestPGLossPPOClipHand(t *testing.T) {
	tests := []struct {
		name          string
		logpNew, adv  float64
		loss, weight  float64
		clippedTokens float64
	}{
		{"rho high, A>0: clipped at 1.2", -0.5, 1, -1.2, 0, 1},
		{"rho high, A<0: unclipped", -0.5, -1, 1.6487213, 1.6487213, 0},
		{"rho low, A<0: clipped at 0.8", -1.5, -1, 0.8, 0, 1},
		{"rho low, A>0: unclipped", -1.5, 1, -0.6065307, -0.6065307, 0},
		{"rho in range", -0.9, 2, -2 * 1.1051709, -2 * 1.1051709, 0},
		{"A = 0", -0.5, 0, 0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seq := PGSequence{LogpNew: []float64{tc.logpNew}, LogpOld: []float64{-1}, Advantage: tc.adv}
			res, err := PGLoss([]PGSequence{seq}, noIS(AggTokenMean))
			if err != nil {
				t.Fatal(err)
			}
			if !near(res.Loss, tc.loss, handTol) || !near(res.Weights[0][0], tc.weight, handTol) {
				t.Errorf("loss, weight = %.9g, %.9g; want %.9g, %.9g", res.Loss, res.Weights[0][0], tc.loss, tc.weight)
			}
			if res.Stats.ClippedFrac != tc.clippedTokens {
				t.Errorf("clipped fraction = %v, want %v", res.Stats.ClippedFrac, tc.clippedTokens)
			}
		})
	}
}

// Asymmetric clip (DAPO clip-higher): with eps_high 0.28, rho = 1.25 is inside for A > 0.
func TestPGLossClipHigher(t *testing.T) {
	cfg := PGConfig{Agg: AggTokenMean, ClipLow: 0.2, ClipHigh: 0.28}
	lr := math.Log(1.25)
	res, err := PGLoss([]PGSequence{{LogpNew: []float64{lr - 1}, LogpOld: []float64{-1}, Advantage: 1}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !near(res.Loss, -1.25, handTol) || !near(res.Weights[0][0], -1.25, handTol) || res.Stats.ClippedFrac != 0 {
		t.Errorf("loss %v weight %v clipped %v, want -1.25 -1.25 0", res.Loss, res.Weights[0][0], res.Stats.ClippedFrac)
	}
}

// One token with A = 0, so only the KL term remains; beta = 0.1, token-mean.
// k3 at d = ref - new = 1: e - 2 = 0.7182818, derivative 1 - e = -1.7182818.
// k1 at d = 1: -1, derivative +1.
func TestPGLossKLHand(t *testing.T) {
	tests := []struct {
		name         string
		est          KLEstimator
		ref, logp    float64
		loss, weight float64
		klMean       float64
	}{
		{"k3", KLK3, -1, -2, 0.07182818, -0.17182818, 0.7182818},
		{"k3 reversed", KLK3, -2, -1, 0.1 * (math.Exp(-1) - 1 + 1), 0.1 * (1 - math.Exp(-1)), math.Exp(-1)},
		{"k1", KLK1, -1, -2, -0.1, 0.1, -1},
		{"k3 at zero", KLK3, -1, -1, 0, 0, 0},
		// d = 30 is clamped to 20: value e^20 - 21, no gradient.
		{"k3 clamped", KLK3, 0, -30, 0.1 * (math.Exp(20) - 21), 0, math.Exp(20) - 21},
		{"k1 clamped", KLK1, -30, 0, 2, 0, 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := PGConfig{Agg: AggTokenMean, ClipLow: 0.2, ClipHigh: 0.2, BetaKL: 0.1, KL: tc.est}
			seq := PGSequence{LogpNew: []float64{tc.logp}, LogpRef: []float64{tc.ref}}
			res, err := PGLoss([]PGSequence{seq}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !near(res.Loss, tc.loss, handTol) || !near(res.Weights[0][0], tc.weight, handTol) {
				t.Errorf("loss, weight = %.9g, %.9g; want %.9g, %.9g", res.Loss, res.Weights[0][0], tc.loss, tc.weight)
			}
			if !near(res.Stats.KLMean, tc.klMean, handTol) {
				t.Errorf("KL mean = %.9g, want %.9g", res.Stats.KLMean, tc.klMean)
			}
			if !near(res.KLLoss, tc.loss, handTol) || res.PolicyLoss != 0 {
				t.Errorf("parts = %v + %v, want 0 + %v", res.PolicyLoss, res.KLLoss, tc.loss)
			}
		})
	}
}

// A reference given with beta = 0 feeds the KL stat but not the loss.
func TestPGLossKLStatWithoutPenalty(t *testing.T) {
	cfg := noIS(AggTokenMean)
	res, err := PGLoss([]PGSequence{{LogpNew: []float64{-2}, LogpRef: []float64{-1}, Advantage: 1}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Loss != -1 || res.Weights[0][0] != -1 || !near(res.Stats.KLMean, 0.7182818, handTol) {
		t.Errorf("loss %v weight %v KL %v, want -1 -1 0.7182818", res.Loss, res.Weights[0][0], res.Stats.KLMean)
	}
}

// Importance sampling on the first update (old = new) with A = 1, token-mean. Sequence 0 has
// per-token log(pi_old/pi_b) = [1, -0.5] (ratios 2.7182818, 0.6065307, sum 0.5 -> 1.6487213);
// sequence 1 has [0.5, 0.5] (sum 1 -> 2.7182818).
func TestPGLossImportanceSamplingHand(t *testing.T) {
	batch := func() []PGSequence {
		return []PGSequence{
			{LogpNew: []float64{-1, -1}, LogpBehaviour: []float64{-2, -0.5}, Advantage: 1},
			{LogpNew: []float64{-1, -1}, LogpBehaviour: []float64{-1.5, -1.5}, Advantage: 1},
		}
	}
	const e1, em05, e05 = 2.7182818, 0.6065307, 1.6487213
	tests := []struct {
		name      string
		tis, mis  ISLevel
		loss      float64
		weights   [][]float64
		dropped   float64
		truncated float64
	}{
		// Token TIS, C = 2: weights [2, 0.6065307] and [1.6487213, 1.6487213], over 4 tokens.
		{"tis token", ISToken, ISOff, -(2 + em05 + 2*e05) / 4,
			[][]float64{{-0.5, -em05 / 4}, {-e05 / 4, -e05 / 4}}, 0, 0.25},
		// Sequence TIS, C = 2: sequence 0 weighs 1.6487213, sequence 1 is capped at 2.
		{"tis sequence", ISSequence, ISOff, -(2*e05 + 2*2) / 4,
			[][]float64{{-e05 / 4, -e05 / 4}, {-0.5, -0.5}}, 0, 0.5},
		// Token MIS in [0.5, 2]: the first token (ratio e) is dropped; 3 tokens remain.
		{"mis token", ISOff, ISToken, -1,
			[][]float64{{0, -1.0 / 3}, {-1.0 / 3, -1.0 / 3}}, 0.25, 0},
		// Sequence MIS in [0.5, 2]: sequence 1 (ratio e) is dropped.
		{"mis sequence", ISOff, ISSequence, -1,
			[][]float64{{-0.5, -0.5}, {0, 0}}, 0.5, 0},
		// Both: token MIS drops token (0,0); token TIS weighs the rest.
		{"mis token + tis token", ISToken, ISToken, -(em05 + 2*e05) / 3,
			[][]float64{{0, -em05 / 3}, {-e05 / 3, -e05 / 3}}, 0.25, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := PGConfig{Agg: AggTokenMean, ClipLow: 0.2, ClipHigh: 0.2, TIS: tc.tis, TISCap: 2, MIS: tc.mis, MISMin: 0.5, MISMax: 2}
			res, err := PGLoss(batch(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !near(res.Loss, tc.loss, handTol) {
				t.Errorf("loss = %.9g, want %.9g", res.Loss, tc.loss)
			}
			checkWeights(t, res.Weights, tc.weights)
			if !near(res.Stats.DroppedFrac, tc.dropped, handTol) || !near(res.Stats.TruncatedFrac, tc.truncated, handTol) {
				t.Errorf("dropped %v truncated %v, want %v %v", res.Stats.DroppedFrac, res.Stats.TruncatedFrac, tc.dropped, tc.truncated)
			}
			// |new - behaviour| = [1, 0.5, 0.5, 0.5]: mean 0.625, p99 = max = 1.
			// Sequence log-ratios 0.5 and 1: mean 0.75 (before truncation, whatever IS does).
			if !near(res.Stats.LogRatioAbsMean, 0.625, handTol) || res.Stats.LogRatioAbsP99 != 1 || !near(res.Stats.SeqLogRatioMean, 0.75, handTol) {
				t.Errorf("mismatch stats %+v", res.Stats)
			}
		})
	}
}

// A one-sided MIS range: MISMin 0 and MISMax +Inf keep everything.
func TestPGLossMISOpenRange(t *testing.T) {
	cfg := PGConfig{Agg: AggTokenMean, MIS: ISToken, MISMin: 0, MISMax: math.Inf(1)}
	res, err := PGLoss([]PGSequence{{LogpNew: []float64{-1, -1}, LogpBehaviour: []float64{-40, -0.001}, Advantage: 1}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.KeptTokens != 2 || res.Loss != -1 {
		t.Errorf("kept %d loss %v, want 2 and -1", res.Stats.KeptTokens, res.Loss)
	}
}

// When MIS drops everything the loss is 0 with zero weights, not an error: a batch can be that
// far off-policy, and the trainer sees DroppedFrac = 1.
func TestPGLossAllDropped(t *testing.T) {
	cfg := PGConfig{Agg: AggSeqMeanTokenMean, MIS: ISSequence, MISMin: 0.5, MISMax: 2}
	res, err := PGLoss([]PGSequence{{LogpNew: []float64{-1}, LogpBehaviour: []float64{-5}, Advantage: 1}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Loss != 0 || res.Weights[0][0] != 0 || res.Stats.DroppedFrac != 1 {
		t.Errorf("loss %v weight %v dropped %v, want 0 0 1", res.Loss, res.Weights[0][0], res.Stats.DroppedFrac)
	}
}

// Nearest-rank p99 of 1..100 is 99; of 1..10 it is 10.
func TestMeanAndP99(t *testing.T) {
	for _, tc := range []struct{ n, p99 int }{{100, 99}, {10, 10}, {1, 1}, {200, 198}} {
		xs := make([]float64, tc.n)
		for i := range xs {
			xs[len(xs)-1-i] = float64(i + 1) // descending: the function must sort
		}
		mean, p99 := meanAndP99(xs)
		if mean != float64(tc.n+1)/2 || p99 != float64(tc.p99) {
			t.Errorf("n=%d: mean %v p99 %v, want %v %v", tc.n, mean, p99, float64(tc.n+1)/2, tc.p99)
		}
	}
}

// LogpOld = nil must behave exactly like an explicit copy of LogpNew.
func TestPGLossOldDefaultsToNew(t *testing.T) {
	cfg := DefaultPG()
	cfg.MIS, cfg.MISMin, cfg.MISMax = ISToken, 0.1, 10
	seqs := fdBatch(true)
	explicit := make([]PGSequence, len(seqs))
	for i, s := range seqs {
		s.LogpOld = nil
		seqs[i] = s
		s.LogpOld = append([]float64(nil), s.LogpNew...)
		explicit[i] = s
	}
	a, err := PGLoss(seqs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := PGLoss(explicit, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.Loss != b.Loss || fmt.Sprint(a.Weights) != fmt.Sprint(b.Weights) || a.Stats != b.Stats {
		t.Errorf("nil old: loss %v stats %+v; explicit: loss %v stats %+v", a.Loss, a.Stats, b.Loss, b.Stats)
	}
}

// fdBatch is a batch whose PPO ratios sit away from the clip kinks (rho in {0.61, 0.90, 1, 1.05,
// 1.35} against 0.8 and 1.2), with mixed advantage signs, a masked token, unequal lengths and
// behaviour ratios on both sides of the IS bounds used below.
func fdBatch(withRef bool) []PGSequence {
	offsets := []float64{-0.5, -0.1, 0, 0.05, 0.3}
	lens := []int{5, 3, 4, 1}
	advs := []float64{1.3, -0.7, 0.4, -1.1}
	var seqs []PGSequence
	k := 0
	for i, n := range lens {
		s := PGSequence{Advantage: advs[i]}
		for t := 0; t < n; t++ {
			old := -0.2 - 0.37*float64((k*7)%11)
			s.LogpOld = append(s.LogpOld, old)
			s.LogpNew = append(s.LogpNew, old+offsets[k%len(offsets)])
			// log(pi_old/pi_b) in [-0.9, 0.9]: some outside MIS [0.5, 2] (log: -0.69, 0.69),
			// some above the TIS cap 2 only as sequence sums.
			s.LogpBehaviour = append(s.LogpBehaviour, old-0.9+0.45*float64((k*3)%5))
			if withRef {
				s.LogpRef = append(s.LogpRef, old+0.6-0.3*float64(k%5))
			}
			k++
		}
		seqs = append(seqs, s)
	}
	seqs[0].Mask = []bool{true, true, false, true, true}
	return seqs
}

func cloneBatch(seqs []PGSequence) []PGSequence {
	out := make([]PGSequence, len(seqs))
	for i, s := range seqs {
		s.LogpNew = append([]float64(nil), s.LogpNew...)
		out[i] = s
	}
	return out
}

// The weights must be the exact derivative of the returned loss for every combination of
// settings: central differences on each LogpNew (masked tokens included, whose derivative must
// be 0). h = 1e-5 in float64 gives truncation error ~1e-10 and rounding ~1e-11; tolerance 1e-7.
func TestPGLossFiniteDifferences(t *testing.T) {
	const h, tol = 1e-5, 1e-7
	type klCase struct {
		name string
		beta float64
		est  KLEstimator
		ref  bool
	}
	kls := []klCase{{"nokl", 0, "", false}, {"refstat", 0, KLK3, true}, {"k1", 0.3, KLK1, true}, {"k3", 0.3, KLK3, true}}
	levels := []ISLevel{ISOff, ISToken, ISSequence}
	for _, agg := range []LossAgg{AggSeqMeanTokenMean, AggTokenMean, AggSeqMeanTokenSumNorm} {
		for _, kl := range kls {
			for _, tis := range levels {
				for _, mis := range levels {
					for _, clip := range [][2]float64{{0.2, 0.2}, {0.2, 0.28}} {
						cfg := PGConfig{Agg: agg, ClipLow: clip[0], ClipHigh: clip[1], BetaKL: kl.beta, KL: kl.est,
							TIS: tis, TISCap: 1.5, MIS: mis, MISMin: 0.5, MISMax: 2}
						name := fmt.Sprintf("%s/%s/tis=%s/mis=%s/clip=%v", agg, kl.name, tis, mis, clip[1])
						t.Run(name, func(t *testing.T) { checkFD(t, fdBatch(kl.ref), cfg, h, tol) })
					}
				}
			}
		}
	}
}

func checkFD(t *testing.T, seqs []PGSequence, cfg PGConfig, h, tol float64) {
	t.Helper()
	res, err := PGLoss(seqs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	nonzero := 0
	for i := range seqs {
		for j := range seqs[i].LogpNew {
			plus, minus := cloneBatch(seqs), cloneBatch(seqs)
			plus[i].LogpNew[j] += h
			minus[i].LogpNew[j] -= h
			lp, err1 := PGLoss(plus, cfg)
			lm, err2 := PGLoss(minus, cfg)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			fd := (lp.Loss - lm.Loss) / (2 * h)
			if math.Abs(fd-res.Weights[i][j]) > tol {
				t.Errorf("d loss/d logp[%d][%d]: weight %.10g, finite difference %.10g", i, j, res.Weights[i][j], fd)
			}
			if res.Weights[i][j] != 0 {
				nonzero++
			}
		}
	}
	if nonzero == 0 {
		t.Errorf("all weights are zero: the case tests nothing")
	}
}

func TestPGLossErrors(t *testing.T) {
	good := func() PGSequence {
		return PGSequence{LogpNew: []float64{-1, -2}, LogpBehaviour: []float64{-1, -2}, LogpRef: []float64{-1, -2}, Advantage: 1}
	}
	tests := []struct {
		name string
		cfg  func(*PGConfig)
		seqs func() []PGSequence
		want string
	}{
		{"empty batch", nil, func() []PGSequence { return nil }, "empty batch"},
		{"unknown agg", func(c *PGConfig) { c.Agg = "mean" }, nil, "unknown loss aggregation"},
		{"bad clip", func(c *PGConfig) { c.ClipLow = 1 }, nil, "clip low"},
		{"negative beta", func(c *PGConfig) { c.BetaKL = -1 }, nil, "beta KL"},
		{"unknown KL", func(c *PGConfig) { c.KL = "k2" }, nil, "unknown KL estimator"},
		{"unknown TIS level", func(c *PGConfig) { c.TIS = "batch" }, nil, "unknown TIS level"},
		{"TIS cap 0", func(c *PGConfig) { c.TISCap = 0 }, nil, "TIS cap"},
		{"MIS range", func(c *PGConfig) { c.MIS, c.MISMin, c.MISMax = ISToken, 2, 1 }, nil, "MIS range"},
		{"negative norm length", func(c *PGConfig) { c.NormLen = -1 }, nil, "norm length"},
		{"norm length too short", func(c *PGConfig) { c.Agg, c.NormLen = AggSeqMeanTokenSumNorm, 1 }, nil, "more than the norm length"},
		{"length mismatch", nil, func() []PGSequence { s := good(); s.LogpRef = []float64{-1}; return []PGSequence{s} }, "1 reference log-probs for 2 tokens"},
		{"mask mismatch", nil, func() []PGSequence { s := good(); s.Mask = []bool{true}; return []PGSequence{s} }, "mask values"},
		{"no behaviour with TIS", nil, func() []PGSequence { s := good(); s.LogpBehaviour = nil; return []PGSequence{s} }, "needs behaviour"},
		{"no reference with beta", nil, func() []PGSequence { s := good(); s.LogpRef = nil; return []PGSequence{s} }, "needs reference"},
		{"partial old", nil, func() []PGSequence {
			a, b := good(), good()
			b.LogpOld = []float64{-1, -2}
			return []PGSequence{a, b}
		}, "old log-probs given for some sequences only"},
		{"NaN logp", nil, func() []PGSequence { s := good(); s.LogpNew[1] = math.NaN(); return []PGSequence{s} }, "token 1: new log-prob NaN"},
		{"Inf advantage", nil, func() []PGSequence { s := good(); s.Advantage = math.Inf(1); return []PGSequence{s} }, "advantage"},
		{"all masked", nil, func() []PGSequence { s := good(); s.Mask = []bool{false, false}; return []PGSequence{s} }, "no valid token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultPG()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			seqs := []PGSequence{good()}
			if tc.seqs != nil {
				seqs = tc.seqs()
			}
			_, err := PGLoss(seqs, cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// Masked-out tokens may hold garbage (NaN padding): it must not leak into loss or stats.
func TestPGLossIgnoresMaskedValues(t *testing.T) {
	cfg := DefaultPG()
	nan := math.NaN()
	seq := PGSequence{
		LogpNew: []float64{-1, nan}, LogpBehaviour: []float64{-1, nan}, LogpRef: []float64{-1, nan},
		Mask: []bool{true, false}, Advantage: 2,
	}
	res, err := PGLoss([]PGSequence{seq}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Loss != -2 || res.Weights[0][1] != 0 || math.IsNaN(res.Stats.KLMean) || math.IsNaN(res.Stats.LogRatioAbsP99) {
		t.Errorf("loss %v weights %v stats %+v", res.Loss, res.Weights, res.Stats)
	}
}

func TestParseISLevel(t *testing.T) {
	tests := []struct {
		in   string
		want ISLevel
		err  bool
	}{
		{"", ISOff, false}, {"off", ISOff, false}, {"none", ISOff, false},
		{"token", ISToken, false}, {"sequence", ISSequence, false}, {"geometric", ISOff, true},
	}
	for _, tc := range tests {
		got, err := ParseISLevel(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseISLevel(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}
