package train

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/vzlocal/vzlocal/data"
	"github.com/vzlocal/vzlocal/selfplay"
)

// SpyPolicy is the one adapter the spy game trains: every player and the observer share it.
const SpyPolicy = "policy"

// SpyGame is Vision-Zero's "Who is the Spy" as a trainer Game: Iterative-SPO alternates the
// clue stage (clue samples, RAE advantages) and the decision stage (observer samples, group
// advantages); RAE baselines move after every game in both stages (games.md 1.2, 1.4).
type SpyGame struct {
	engine       *selfplay.SpyEngine
	pairs        []*data.Pair // the training split
	gamesPerStep int
	seed         int64
	switchCfg    SwitchConfig
	// trainObserverInClue reproduces the official code's quirk of also training observer
	// samples in clue steps.
	trainObserverInClue bool

	rae      *selfplay.SpyRAE
	switcher SwitchState

	pending *selfplay.SpyRAE // baselines after the step being played, committed by EndStep
}

// NewSpyGame prepares the game on the training pairs.
func NewSpyGame(eng *selfplay.SpyEngine, pairs []*data.Pair, gamesPerStep int, seed int64, sw SwitchConfig, trainObserverInClue bool) (*SpyGame, error) {
	if len(pairs) == 0 {
		return nil, fmt.Errorf("spy game: no training pairs")
	}
	if gamesPerStep < 1 {
		return nil, fmt.Errorf("spy game: games per step %d: want >= 1", gamesPerStep)
	}
	if err := sw.Validate(); err != nil {
		return nil, err
	}
	return &SpyGame{
		engine: eng, pairs: pairs, gamesPerStep: gamesPerStep, seed: seed, switchCfg: sw,
		trainObserverInClue: trainObserverInClue,
		rae:                 selfplay.NewSpyRAE(eng.Settings.Alpha), switcher: NewSwitchState(),
	}, nil
}

func (g *SpyGame) Adapters() []string { return []string{SpyPolicy} }

func (g *SpyGame) Plan() StepPlan {
	return StepPlan{Stage: g.switcher.Stage, Train: SpyPolicy}
}

// pairsForStep walks the training pairs in a fresh seeded order each epoch, so a step's pairs
// depend only on (seed, step): a resumed run plays what the uninterrupted run played.
func (g *SpyGame) pairsForStep(step int) []*data.Pair {
	return epochPick(g.pairs, g.seed, func(epoch int) uint64 { return uint64(epoch) }, step, g.gamesPerStep)
}

// epochPick returns the per items of a step from items walked in a fresh seeded order each epoch
// (epoch e is permuted by PCG(seed, salt(e))); the permutation is drawn once per epoch.
func epochPick[T any](items []T, seed int64, salt func(epoch int) uint64, step, per int) []T {
	n := len(items)
	out := make([]T, per)
	epoch, perm := -1, []int(nil)
	for i := range out {
		k := step*per + i
		if k/n != epoch {
			epoch = k / n
			perm = rand.New(rand.NewPCG(uint64(seed), salt(epoch))).Perm(n)
		}
		out[i] = items[perm[k%n]]
	}
	return out
}

func (g *SpyGame) Play(ctx context.Context, step int, policies map[string]selfplay.Policy) (*StepResult, error) {
	pol, ok := policies[SpyPolicy]
	if !ok {
		return nil, fmt.Errorf("spy game: no policy %q", SpyPolicy)
	}
	games, rollout, err := g.engine.Play(ctx, pol, g.pairsForStep(step), step*g.gamesPerStep)
	if err != nil {
		return nil, err
	}
	rae := *g.rae
	for _, game := range games {
		if err := game.Score(g.engine.Settings, &rae); err != nil {
			return nil, err
		}
	}
	g.pending = &rae

	stage := g.switcher.Stage
	var samples []*selfplay.SpySample
	if stage == StageClue {
		samples = selfplay.SpySamplesOf(games, selfplay.StageClue)
		if g.trainObserverInClue {
			samples = append(samples, selfplay.SpySamplesOf(games, selfplay.StageDecision)...)
		}
	} else {
		samples = selfplay.SpySamplesOf(games, selfplay.StageDecision)
	}
	res := &StepResult{RolloutTokens: rollout.Tokens}
	groups := map[string][]float64{}
	for _, s := range samples {
		group := fmt.Sprintf("game%d/turn%d", s.Game, s.Turn)
		sampling := g.engine.Settings.Decide
		if s.Stage == selfplay.StageClue {
			sampling = g.engine.Settings.Clue
		}
		res.Samples = append(res.Samples, Sample{
			Group: group,
			Request: selfplay.Request{System: s.System, User: s.Prompt, Image: s.Image, Role: s.Role, Player: s.Player,
				Temperature: sampling.Temperature, MaxTokens: sampling.MaxTokens},
			Completion: s.Completion(),
			Advantage:  s.Advantage,
		})
		groups[group] = append(groups[group], s.Reward)
	}
	for _, game := range games {
		res.Transcripts = append(res.Transcripts, game)
	}
	sum := selfplay.SummarizeSpyGames(games, rollout)
	m := &res.Metrics
	m.Phase = stage
	m.RewardMean, m.RewardStd = selfplay.MeanStd(rewardsOf(samples))
	m.FracZeroStd = fracZeroStd(groups)
	m.DecisionAccuracy, m.AbstainRate, m.InvalidRate = sum.DecisionAcc, sum.AbstainRate, sum.InvalidRate
	m.SpyWinRate = 1 - sum.SpyCaughtRate
	m.BaselineSpy, m.BaselineCiv = rae.Spy, rae.Civ
	return res, nil
}

func (g *SpyGame) EndStep(step int, res *StepResult) bool {
	if g.pending != nil {
		g.rae, g.pending = g.pending, nil
	}
	before := g.switcher.Stage
	after := g.switcher.Observe(g.switchCfg, step, res.Metrics.DecisionAccuracy, res.Metrics.AbstainRate)
	res.Metrics.AccEMA, res.Metrics.AbstainEMA = g.switcher.AccEMA, g.switcher.AbstainEMA
	return before != after
}

type spyGameState struct {
	RAE    json.RawMessage `json:"rae"`
	Switch SwitchState     `json:"switch"`
}

func (g *SpyGame) State() ([]byte, error) {
	rae, err := json.Marshal(g.rae)
	if err != nil {
		return nil, err
	}
	return json.Marshal(spyGameState{RAE: rae, Switch: g.switcher})
}

func (g *SpyGame) Restore(b []byte) error {
	var st spyGameState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("spy game state: %w", err)
	}
	rae, err := selfplay.UnmarshalSpyRAE(st.RAE)
	if err != nil {
		return fmt.Errorf("spy game state: %w", err)
	}
	if st.Switch.Stage != StageClue && st.Switch.Stage != StageDecision {
		return fmt.Errorf("spy game state: stage %q", st.Switch.Stage)
	}
	g.rae, g.switcher = rae, st.Switch
	return nil
}

func rewardsOf(samples []*selfplay.SpySample) []float64 {
	out := make([]float64, len(samples))
	for i, s := range samples {
		out[i] = s.Reward
	}
	return out
}

// fracZeroStd is the fraction of groups of two or more samples whose rewards are all equal: they
// give no gradient under group normalisation (the first thing to watch in win/lose games).
func fracZeroStd(groups map[string][]float64) float64 {
	var n, zero int
	for _, rs := range groups {
		if len(rs) < 2 {
			continue
		}
		n++
		if _, s := selfplay.MeanStd(rs); s < 1e-12 {
			zero++
		}
	}
	if n == 0 {
		return 0
	}
	return float64(zero) / float64(n)
}

var _ Game = (*SpyGame)(nil)
