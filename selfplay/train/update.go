package train

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vzlocal/vzlocal/lora/cuda"

	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/lora"
	"github.com/vzlocal/vzlocal/optim"
	"github.com/vzlocal/vzlocal/selfplay"
)

type updateOutcome struct{ skipped bool }

// group is the samples of one prompt: one gradient-engine batch, so the prompt is computed once.
type group struct {
	batch   *lora.Batch
	samples []Sample
	prompt  []int // prompt length of each sequence: completion token k sits at prompt+k
}

// tokenWeights spreads per-completion-token weights (one slice per sequence of the group) over
// the sequences' tokens, zero on the prompt: the engine's weights layout.
func (g *group) tokenWeights(completion [][]float32) [][]float32 {
	w := make([][]float32, len(g.batch.Seqs))
	for i, seq := range g.batch.Seqs {
		w[i] = make([]float32, len(seq.Tokens))
		copy(w[i][g.prompt[i]:], completion[i])
	}
	return w
}

// update trains plan.Train on the step's samples and swaps the result into llama.cpp.
func (t *Trainer) update(ctx context.Context, step int, plan StepPlan, train *trainedAdapter, res *StepResult, m *selfplay.StepMetrics) (updateOutcome, error) {
	if len(res.Samples) == 0 {
		t.Log.Info().Int("step", step+1).Msg("no samples to train on this step (nothing kept by the game)")
		return updateOutcome{}, nil
	}
	groups, err := t.groups(train, res.Samples)
	if err != nil {
		return updateOutcome{}, err
	}
	if err := t.checkMemory(groups); err != nil {
		return updateOutcome{}, err
	}
	var ref *lora.Adapter
	if t.pg.BetaKL > 0 && plan.Reference != "" {
		s, ok := t.snapshots[plan.Reference]
		if !ok {
			return updateOutcome{}, fmt.Errorf("KL reference %q was not snapshotted", plan.Reference)
		}
		ref = s.lora
	}

	seqs := make([]optim.PGSequence, 0, len(res.Samples))
	for _, g := range groups {
		for _, s := range g.samples {
			seqs = append(seqs, optim.PGSequence{
				LogpBehaviour: optim.Float64s(s.Completion.LogProbs),
				Advantage:     s.Advantage,
			})
		}
	}
	// seq-mean-token-sum-norm divides by the sampler's max new tokens: that of this step's
	// samples (spy game: clue or decision turns; qs game: questions or answers).
	pgc := t.pg
	if n := maxNewTokens(res.Samples); n > 0 {
		pgc.NormLen = n
	}
	var old [][]float64
	updates := max(t.Config.Loss.UpdatesPerBatch, 1)
	// With several updates per batch a non-finite later update must not leave the earlier ones
	// applied: the step is skipped whole, adapter and optimizer as they were before it.
	var before *lora.Adapter
	var beforeOpt []byte
	if updates > 1 {
		before = train.lora.Clone()
		if beforeOpt, err = train.opt.MarshalBinary(); err != nil {
			return updateOutcome{}, err
		}
	}
	for u := 0; u < updates; u++ {
		// Only before the first update: once one is applied the batch is finished, so an
		// interruption never leaves a half-updated step behind.
		if u == 0 {
			if err := ctx.Err(); err != nil {
				return updateOutcome{}, err
			}
		}
		start := time.Now()
		if t.pg.BetaKL > 0 && u == 0 {
			refLP, err := t.completionLogProbs(groups, ref)
			if err != nil {
				return updateOutcome{}, err
			}
			for i := range seqs {
				seqs[i].LogpRef = refLP[i]
			}
		}
		if u > 0 {
			for i := range seqs {
				seqs[i].LogpOld = old[i]
			}
		}
		var (
			pg     optim.PGResult
			grads  *lora.Adapter
			tokens int
		)
		if we, ok := t.Engine.(weighedEngine); ok && (pgc.MIS == optim.ISOff || u > 0) {
			m.ScoreSeconds += time.Since(start).Seconds()
			start = time.Now()
			if pg, grads, tokens, err = t.backwardWeighed(we, groups, train.lora, seqs, pgc); err != nil {
				return updateOutcome{}, err
			}
		} else {
			newLP, err := t.completionLogProbs(groups, train.lora)
			if err != nil {
				return updateOutcome{}, err
			}
			m.ScoreSeconds += time.Since(start).Seconds()
			for i := range seqs {
				seqs[i].LogpNew = newLP[i]
			}
			if pg, err = optim.PGLoss(seqs, pgc); err != nil {
				return updateOutcome{}, err
			}
			start = time.Now()
			if grads, tokens, err = t.backward(groups, train.lora, pg.Weights32()); err != nil {
				return updateOutcome{}, err
			}
		}
		if u == 0 {
			old = make([][]float64, len(seqs))
			for i := range seqs {
				old[i] = seqs[i].LogpNew
			}
			st := pg.Stats
			m.Loss, m.KL, m.ClippedFrac = pg.Loss, st.KLMean, st.ClippedFrac
			m.LogRatioMean, m.LogRatioP99, m.SeqLogRatioMean = st.LogRatioAbsMean, st.LogRatioAbsP99, st.SeqLogRatioMean
			lengthStats(res.Samples, m)
		}
		secs := time.Since(start).Seconds()
		m.TrainSeconds += secs
		if secs > 0 {
			m.TrainTokPerSec = float64(tokens) / secs
		}

		start = time.Now()
		params := adamParams(train.lora, grads)
		norm := optim.GradNorm(params)
		m.GradNorm = norm
		if isBad(pg.Loss) || isBad(norm) {
			m.Skipped = true
			if u > 0 {
				if err := restoreAdapter(train, before, beforeOpt); err != nil {
					return updateOutcome{}, err
				}
			}
			return updateOutcome{skipped: true}, nil
		}
		if t.Config.Optim.ClipNorm > 0 {
			if _, err := optim.ClipGradNorm(params, t.Config.Optim.ClipNorm); err != nil {
				return updateOutcome{}, err
			}
		}
		lr, err := t.sched.LR(step)
		if err != nil {
			return updateOutcome{}, err
		}
		m.LR = lr
		t.dirty = true // the adapter changes now; the step must be recorded before a checkpoint
		if err := train.opt.Step(params, lr); err != nil {
			return updateOutcome{}, err
		}
		m.OptimSeconds += time.Since(start).Seconds()
	}
	start := time.Now()
	if err := t.syncRollout(train); err != nil {
		return updateOutcome{}, err
	}
	m.SwapSeconds = time.Since(start).Seconds()
	return updateOutcome{}, nil
}

// groups rebuilds every sample's exact input (prompt rows, image embedding rows, completion) and
// packs the samples of one prompt into one engine batch.
func (t *Trainer) groups(train *trainedAdapter, samples []Sample) ([]*group, error) {
	var out []*group
	index := map[string]*group{}
	for _, s := range samples {
		seq, promptLen, err := t.sequence(train.policy, s)
		if err != nil {
			return nil, err
		}
		g, ok := index[s.Group]
		if !ok {
			// The engine scores the tempered distribution the completion was drawn from, so
			// log pi_theta and the behaviour log-probs compare like with like.
			g = &group{batch: &lora.Batch{Temperature: train.policy.Temperature(s.Request)}}
			index[s.Group] = g
			out = append(out, g)
		}
		g.batch.Seqs = append(g.batch.Seqs, seq)
		g.samples = append(g.samples, s)
		g.prompt = append(g.prompt, promptLen)
	}
	return out, nil
}

func (t *Trainer) sequence(pol *selfplay.LlamaPolicy, s Sample) (lora.Sequence, int, error) {
	c := s.Completion
	if len(c.Tokens) == 0 || len(c.Tokens) != len(c.LogProbs) {
		return lora.Sequence{}, 0, fmt.Errorf("sample of %s has %d tokens and %d behaviour log-probs: the rollout backend gives no token-level output (train with the llama.cpp backend)",
			s.Group, len(c.Tokens), len(c.LogProbs))
	}
	pr, err := pol.Prompt(s.Request)
	if err != nil {
		return lora.Sequence{}, 0, err
	}
	if !slices.Equal(pr.Tokens, c.PromptTokens) {
		return lora.Sequence{}, 0, fmt.Errorf("sample of %s: the rebuilt prompt (%d tokens) differs from the one sampled (%d)", s.Group, len(pr.Tokens), len(c.PromptTokens))
	}
	info := t.Model.Info()
	n := len(pr.Tokens)
	seq := lora.Sequence{Tokens: make([]int32, n+len(c.Tokens)), Mask: make([]bool, n+len(c.Tokens))}
	copy(seq.Tokens, pr.Tokens)
	copy(seq.Tokens[n:], c.Tokens)
	for i := range seq.Tokens[:n] {
		if seq.Tokens[i] == llm.ImageRow {
			seq.Tokens[i] = 0 // the engine takes the embedding row at this index
		}
	}
	for i := n; i < len(seq.Mask); i++ {
		seq.Mask[i] = true
	}
	for _, sp := range pr.Images {
		// gemma3's image rows attend to each other both ways, as llama.cpp decoded them.
		seq.Embeds = append(seq.Embeds, lora.EmbedSpan{Pos: sp.Index, Rows: sp.Embd, NonCausal: info.NonCausalImages})
	}
	// Positions exactly as llama.cpp assigned them: the prompt's (an M-RoPE image advances them by
	// max(nx, ny), not by its row count), then the completion from prompt.NPos on, one per token.
	pos := append(pr.Positions(info.MRoPE), make([]int32, len(c.Tokens))...)
	for k := range c.Tokens {
		pos[n+k] = int32(pr.NPos + k)
	}
	if !info.MRoPE {
		seq.Positions = pos
		return seq, n, nil
	}
	// M-RoPE: a text token at p is {p, p, p, 0}; image row r of a span on an nx-wide grid is
	// {Pos, Pos + r/nx, Pos + r%nx, 0} (mtmd's set_position_mrope_2d).
	seq.Positions4 = make([][4]int32, len(pos))
	for i, p := range pos {
		seq.Positions4[i] = [4]int32{p, p, p, 0}
	}
	for _, sp := range pr.Images {
		if sp.NX <= 0 || sp.NX*sp.NY != sp.Rows {
			return lora.Sequence{}, 0, fmt.Errorf("sample of %s: image span %s has %d rows on a %dx%d grid", s.Group, sp.Key, sp.Rows, sp.NX, sp.NY)
		}
		for r := 0; r < sp.Rows; r++ {
			seq.Positions4[sp.Index+r] = [4]int32{int32(sp.Pos), int32(sp.Pos + r/sp.NX), int32(sp.Pos + r%sp.NX), 0}
		}
	}
	return seq, n, nil
}

// completionLogProbs scores every group's completions with adapter a (nil: the base model).
func (t *Trainer) completionLogProbs(groups []*group, a *lora.Adapter) ([][]float64, error) {
	if err := t.Engine.SetAdapter(a); err != nil {
		return nil, err
	}
	var out [][]float64
	for _, g := range groups {
		lps, err := t.Engine.LogProbs(g.batch)
		if err != nil {
			return nil, err
		}
		for i, lp := range lps {
			out = append(out, optim.Float64s(lp[g.prompt[i]:]))
		}
	}
	return out, nil
}

// weighedEngine is a gradient engine that scores and differentiates in one forward: weigh gets
// the log-probs and returns the loss weights (lora.CPU). Without it the trainer scores with
// LogProbs and then runs Backward, two forwards.
type weighedEngine interface {
	BackwardWeighed(b *lora.Batch, weigh func(logp [][]float32) ([][]float32, error)) (*lora.Result, error)
}

// backwardWeighed is the scoring pass and the backward in one forward per group. A group's loss
// weights are computed as soon as its log-probs exist, before the other groups' are known. That
// is exact when each sequence's weights depend only on that sequence and on counts known in
// advance: true unless masked importance sampling decides which tokens count from log pi_theta
// itself (the first update with MIS on), which the caller routes to the two-pass path. The loss
// and stats come from the whole batch at the end, and its weights must equal those used.
func (t *Trainer) backwardWeighed(we weighedEngine, groups []*group, a *lora.Adapter, seqs []optim.PGSequence, pgc optim.PGConfig) (optim.PGResult, *lora.Adapter, int, error) {
	if err := t.Engine.SetAdapter(a); err != nil {
		return optim.PGResult{}, nil, 0, err
	}
	// Sequences whose log pi_theta is not known yet hold zeros: finite, the right length, and
	// (see above) without influence on the other sequences' weights.
	for i := range seqs {
		seqs[i].LogpNew = make([]float64, len(seqs[i].LogpBehaviour))
	}
	used := make([][]float32, len(seqs))
	total := a.ZeroLike()
	k, tokens := 0, 0
	for _, g := range groups {
		first := k
		r, err := we.BackwardWeighed(g.batch, func(lps [][]float32) ([][]float32, error) {
			for i, lp := range lps {
				seqs[first+i].LogpNew = optim.Float64s(lp[g.prompt[i]:])
			}
			pg, err := optim.PGLoss(seqs, pgc)
			if err != nil {
				return nil, err
			}
			w32 := pg.Weights32()[first : first+len(lps)]
			copy(used[first:], w32)
			return g.tokenWeights(w32), nil
		})
		if err != nil {
			return optim.PGResult{}, nil, 0, err
		}
		k += len(g.batch.Seqs)
		tokens += r.Tokens
		if err := total.Add(r.Grads); err != nil {
			return optim.PGResult{}, nil, 0, err
		}
	}
	pg, err := optim.PGLoss(seqs, pgc)
	if err != nil {
		return optim.PGResult{}, nil, 0, err
	}
	same := func(a, b float32) bool { return a == b || (a != a && b != b) } // NaN: the skip path's business
	for i, w := range pg.Weights32() {
		if !slices.EqualFunc(w, used[i], same) {
			return optim.PGResult{}, nil, 0, fmt.Errorf("internal error: the loss weights of sample %d changed once the whole batch was scored (the one-forward path assumes they cannot)", i)
		}
	}
	return pg, total, tokens, nil
}

// backward accumulates d(loss)/d(adapter) over the groups; weights are per completion token in
// sample order.
func (t *Trainer) backward(groups []*group, a *lora.Adapter, weights [][]float32) (*lora.Adapter, int, error) {
	if err := t.Engine.SetAdapter(a); err != nil {
		return nil, 0, err
	}
	total := a.ZeroLike()
	k, tokens := 0, 0
	for _, g := range groups {
		w := g.tokenWeights(weights[k : k+len(g.batch.Seqs)])
		k += len(g.batch.Seqs)
		if acc, ok := t.Engine.(gradAccumulator); ok {
			r, err := acc.BackwardInto(g.batch, w, total)
			if err != nil {
				return nil, 0, err
			}
			tokens += r.Tokens
			continue
		}
		r, err := t.Engine.Backward(g.batch, w)
		if err != nil {
			return nil, 0, err
		}
		tokens += r.Tokens
		if err := total.Add(r.Grads); err != nil {
			return nil, 0, err
		}
	}
	return total, tokens, nil
}

// gradAccumulator is an engine that adds a pass's gradient into the caller's adapter (the CUDA
// engine): the groups of an update then share one gradient buffer instead of each allocating
// its own (154 MB per group at 7B, rank 16).
type gradAccumulator interface {
	BackwardInto(b *lora.Batch, weights [][]float32, grads *lora.Adapter) (*lora.Result, error)
}

// adamParams names the adapter's matrices as the GGUF does ("blk.0.attn_q.weight.lora_a"),
// pairing each with its gradient.
func adamParams(a, grads *lora.Adapter) []optim.Param {
	vals, gs := a.Params(), grads.Params()
	out := make([]optim.Param, 0, len(vals))
	for i, p := range a.Pairs {
		out = append(out,
			optim.Param{Name: p.Name + ".lora_a", Value: vals[2*i], Grad: gs[2*i]},
			optim.Param{Name: p.Name + ".lora_b", Value: vals[2*i+1], Grad: gs[2*i+1]})
	}
	return out
}

// maxNewTokens is the largest token limit the samples were drawn with (0: none given).
func maxNewTokens(samples []Sample) int {
	n := 0
	for _, s := range samples {
		n = max(n, s.Request.MaxTokens)
	}
	return n
}

// restoreAdapter puts back the adapter values and optimizer state saved before a step's
// updates (llama.cpp's copy was not touched: it is synced only after the last update).
func restoreAdapter(a *trainedAdapter, before *lora.Adapter, opt []byte) error {
	dst, src := a.lora.Params(), before.Params()
	for i := range dst {
		copy(dst[i], src[i])
	}
	if err := a.opt.UnmarshalBinary(opt); err != nil {
		return fmt.Errorf("restore adapter %s: %w", a.name, err)
	}
	return nil
}

// syncRollout copies the updated adapter into llama.cpp in place (same tensors, no allocation).
func (t *Trainer) syncRollout(a *trainedAdapter) error {
	for _, p := range a.lora.Pairs {
		if err := a.llm.Update(p.Name+".lora_a", p.A); err != nil {
			return fmt.Errorf("swap adapter %s: %w", a.name, err)
		}
		if err := a.llm.Update(p.Name+".lora_b", p.B); err != nil {
			return fmt.Errorf("swap adapter %s: %w", a.name, err)
		}
	}
	return nil
}

// checkMemory refuses a step whose engine working memory will not fit, before it is attempted.
func (t *Trainer) checkMemory(groups []*group) error {
	var worst int64
	for _, g := range groups {
		est, err := t.Engine.MemoryEstimate(g.batch)
		if err != nil {
			return err
		}
		worst = max(worst, est)
	}
	avail := memAvailable()
	if d, ok := t.Engine.(interface{ Device() cuda.Device }); ok {
		avail = int64(d.Device().Free) // a GPU engine's working memory is device memory
	}
	if avail > 0 && worst > avail*9/10 {
		lower := "--spy-observer-samples or the max tokens (--spy-clue-max-tokens, --spy-decision-max-tokens)"
		if t.Config.Game == "qs" {
			lower = "--qs-questions, --qs-solver-samples or the max tokens (--qs-question-tokens, --qs-answer-tokens)"
		}
		return fmt.Errorf("a batch of this step needs about %.1f GiB of working memory and %.1f GiB is available: lower %s",
			float64(worst)/(1<<30), float64(avail)/(1<<30), lower)
	}
	return nil
}

func lengthStats(samples []Sample, m *selfplay.StepMetrics) {
	total := 0
	for _, s := range samples {
		n := len(s.Completion.Tokens)
		total += n
		m.CompletionLenMax = max(m.CompletionLenMax, n)
	}
	m.CompletionLenMean = float64(total) / float64(len(samples))
}

func isBad(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) }

// memAvailable reads MemAvailable from /proc/meminfo (0 when unknown); a variable so that tests
// can play a smaller machine.
var memAvailable = func() int64 { return meminfo("MemAvailable:") }

// peakRSS is the process's peak resident set (VmHWM).
func peakRSS() int64 { return procStatus("VmHWM:") }

func meminfo(key string) int64    { return kbField("/proc/meminfo", key) }
func procStatus(key string) int64 { return kbField("/proc/self/status", key) }

func kbField(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, key) {
			f := strings.Fields(line[len(key):])
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}
