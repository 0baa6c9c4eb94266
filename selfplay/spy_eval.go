package selfplay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/vzlocal/vzlocal/data"
	"github.com/vzlocal/vzlocal/llm"
)

// Evaluation of the spy game (issue 11): the candidate (a trained adapter) plays mixed games
// against a reference (the frozen base, or another adapter). Game 2k has the candidate as the spy
// and the reference as every civilian; game 2k+1, on the same pair, has the candidate as every
// civilian and the reference as the spy. Playing each pair from both sides cancels the pairs'
// difficulty out of the comparison.
//
// Who decides. The civilians win by identifying the spy, so by default (decision "vote") the
// civilians vote: the candidate's votes decide the games it plays as civilians, the reference's
// votes the games it plays as the spy. In observer mode the observer is always the reference: a
// fixed judge, so that the win rate measures how the candidate plays its seats (clues that expose
// or hide the spy) against a yardstick that does not move between evaluations. A candidate judge
// would mix a second skill into the civilian games only, and a judge trained with the candidate
// could learn to side with it.

// SpyEvalSpy and SpyEvalCivilians are the sides the candidate plays (the per-role keys of a win
// tally).
const (
	SpyEvalSpy       = RoleSpy
	SpyEvalCivilians = RoleCivilian
)

// SpyEvalBase names the base model (no adapter) as a side of an evaluation.
const SpyEvalBase = "base"

// SpyEvalConfig is one evaluation set-up. The held-out set, the pairs of each game and the
// sampling seeds are fixed by it, so evaluations of successive adapters are comparable.
type SpyEvalConfig struct {
	Settings SpySettings // the game; Settings.Seed fixes each game's spy and the sampling seeds
	Prompts  *SpyPrompts
	// Pairs are all the pairs of the data folder; only the held-out ones are played.
	Pairs     []*data.Pair
	HeldOut   float64 // fraction of pairs held out from training (data.HeldOut)
	SplitSeed int64   // seed of the held-out split: the training run's seed
	Games     int     // even: half with the candidate as the spy, half as the civilians
	Batch     int     // games played together (0: 8)
	// TopK and TopP apply to the llama.cpp policies of RunLlama (0 = off), as in training.
	TopK int
	TopP float32
}

// SplitSpyPairs splits pairs into the training and held-out sets by data.HeldOut. Both come back
// sorted by pair ID, so the split and its order depend neither on the read order nor on the run.
func SplitSpyPairs(pairs []*data.Pair, seed int64, fraction float64) (train, heldOut []*data.Pair) {
	for _, p := range pairs {
		if data.HeldOut(p.ID, seed, fraction) {
			heldOut = append(heldOut, p)
		} else {
			train = append(train, p)
		}
	}
	byID := func(s []*data.Pair) {
		sort.SliceStable(s, func(i, j int) bool { return s[i].ID < s[j].ID })
	}
	byID(train)
	byID(heldOut)
	return train, heldOut
}

// SpyEvaluator plays evaluations on a fixed held-out set; build it once and Run it every E steps.
type SpyEvaluator struct {
	cfg     SpyEvalConfig
	engine  *SpyEngine
	heldOut []*data.Pair
	games   []*data.Pair // the pair of game i
}

// NewSpyEvaluator checks the set-up and fixes the games: their pairs, sides and spies.
func NewSpyEvaluator(cfg SpyEvalConfig) (*SpyEvaluator, error) {
	if cfg.Games < 2 || cfg.Games%2 != 0 {
		return nil, fmt.Errorf("eval: %d games: want an even number, at least 2 (half with the candidate as the spy, half as the civilians)", cfg.Games)
	}
	if cfg.HeldOut <= 0 || cfg.HeldOut > 1 {
		return nil, fmt.Errorf("eval: held-out fraction %g: want 0 < fraction <= 1 (the pairs training never used)", cfg.HeldOut)
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 8
	}
	eng, err := NewSpyEngine(cfg.Settings, cfg.Prompts)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	_, held := SplitSpyPairs(cfg.Pairs, cfg.SplitSeed, cfg.HeldOut)
	if len(held) == 0 {
		return nil, fmt.Errorf("eval: none of the %d pairs is held out at fraction %g with seed %d: "+
			"evaluating on training pairs would measure memory, not skill; use more pairs or a larger held-out fraction",
			len(cfg.Pairs), cfg.HeldOut, cfg.SplitSeed)
	}
	// Pairs in a seeded order, cycling when there are fewer than Games/2; each pair is played
	// twice in a row, once per side.
	order := rand.New(rand.NewPCG(uint64(cfg.Settings.Seed), 0xe7a1)).Perm(len(held))
	games := make([]*data.Pair, cfg.Games)
	for i := range games {
		games[i] = held[order[(i/2)%len(held)]]
	}
	return &SpyEvaluator{cfg: cfg, engine: eng, heldOut: held, games: games}, nil
}

// HeldOut is the held-out set the evaluator plays on, sorted by pair ID.
func (e *SpyEvaluator) HeldOut() []*data.Pair { return e.heldOut }

// Settings are the game settings of the evaluation.
func (e *SpyEvaluator) Settings() SpySettings { return e.cfg.Settings }

// CandidateSide is the side the candidate plays in game id: the spy in even games, the civilians
// in odd ones.
func CandidateSide(id int) string {
	if id%2 == 0 {
		return SpyEvalSpy
	}
	return SpyEvalCivilians
}

// RunLlama evaluates adapter candidate against adapter reference (nil = the base model) on one
// loaded model. Each side gets a fresh LlamaPolicy with a fixed seed, so the same adapters replay
// the same games. Afterwards the model has one of the two adapters attached; policies that share
// the model attach their own before every call, so training is unaffected.
func (e *SpyEvaluator) RunLlama(ctx context.Context, m *llm.Model, candidate, reference *llm.Adapter) (*SpyEvalResult, error) {
	if m == nil {
		return nil, errors.New("eval: no model")
	}
	seed := uint64(e.cfg.Settings.Seed)
	side := func(a *llm.Adapter, salt uint64) *LlamaPolicy {
		p := NewLlamaPolicy(m, a, seed^salt)
		p.TopK, p.TopP = e.cfg.TopK, e.cfg.TopP
		return p
	}
	return e.Run(ctx, side(candidate, 0xca4d), side(reference, 0x4ef0))
}

// Run plays the evaluation with any two policies (llama.cpp, Ollama, scripted).
func (e *SpyEvaluator) Run(ctx context.Context, candidate, reference Policy) (*SpyEvalResult, error) {
	if candidate == nil || reference == nil {
		return nil, errors.New("eval: candidate and reference policies are both needed")
	}
	s := e.cfg.Settings
	routes := make(map[int]*RoutedPolicy, len(e.games))
	for id := range e.games {
		routes[id] = e.route(id, candidate, reference)
	}
	pol := &RoutedPolicy{Pick: func(r Request) Policy {
		t, ok := r.Truth.(*SpyTruth)
		if !ok || t == nil || routes[t.Game] == nil {
			return nil // RoutedPolicy reports the request as unroutable
		}
		return routes[t.Game].Pick(r)
	}}
	res := &SpyEvalResult{Decision: s.Decision, Players: s.Players, Rounds: s.Rounds, HeldOutPairs: len(e.heldOut)}
	rae := NewSpyRAE(s.Alpha) // scoring needs baselines; evaluation reads only the outcome
	for first := 0; first < len(e.games); first += e.cfg.Batch {
		pairs := e.games[first:min(first+e.cfg.Batch, len(e.games))]
		games, stats, err := e.engine.Play(ctx, pol, pairs, first)
		res.Rollout.Add(stats)
		if err != nil {
			return nil, fmt.Errorf("eval: games %d-%d: %w", first, first+len(pairs)-1, err)
		}
		for _, g := range games {
			if err := g.Score(s, rae); err != nil {
				return nil, fmt.Errorf("eval: %w", err)
			}
			res.addGame(g)
		}
	}
	return res, nil
}

// route is game id's seating: the candidate in the spy's seat or in every civilian seat, the
// reference everywhere else, the observer included (the fixed judge).
func (e *SpyEvaluator) route(id int, candidate, reference Policy) *RoutedPolicy {
	spy := SpyForGame(e.cfg.Settings.Seed, id, e.cfg.Settings.Players)
	if CandidateSide(id) == SpyEvalSpy {
		return RouteByPlayer(reference, map[int]Policy{spy: candidate})
	}
	return RouteByPlayer(candidate, map[int]Policy{spy: reference, 0: reference})
}

// SpyEvalOutcome is one evaluation game from the candidate's side.
type SpyEvalOutcome struct {
	Game      int    `json:"game"`
	Pair      string `json:"pair"`
	Side      string `json:"side"` // what the candidate played: "spy" or "civilian"
	Spy       int    `json:"spy"`
	Accused   int    `json:"accused"` // 0: no plurality
	SpyCaught bool   `json:"spy_caught"`
	Won       bool   `json:"won"` // spy caught when the candidate played the civilians, not caught when the spy
}

// SpyEvalPlayer measures one side's completions: its decisions (votes, or the observer's samples)
// and the length of everything it wrote.
type SpyEvalPlayer struct {
	Decisions   int `json:"decisions"`
	Correct     int `json:"correct"` // named the spy
	Abstained   int `json:"abstained"`
	Invalid     int `json:"invalid"`
	Completions int `json:"completions"` // clues and decisions
	Tokens      int `json:"tokens"`      // sampled tokens (0 when the backend reports none)
	Chars       int `json:"chars"`       // characters (runes) of the completions
}

func spyEvalRate(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// Accuracy is the fraction of decisions that named the spy.
func (p SpyEvalPlayer) Accuracy() float64 { return spyEvalRate(p.Correct, p.Decisions) }

// AbstainRate is the fraction of decisions that answered N/A.
func (p SpyEvalPlayer) AbstainRate() float64 { return spyEvalRate(p.Abstained, p.Decisions) }

// InvalidRate is the fraction of decisions with no parsable vote.
func (p SpyEvalPlayer) InvalidRate() float64 { return spyEvalRate(p.Invalid, p.Decisions) }

// MeanTokens is the mean completion length in sampled tokens.
func (p SpyEvalPlayer) MeanTokens() float64 { return spyEvalRate(p.Tokens, p.Completions) }

// MeanChars is the mean completion length in characters.
func (p SpyEvalPlayer) MeanChars() float64 { return spyEvalRate(p.Chars, p.Completions) }

// SpyEvalResult is an evaluation's outcome. Win-rate intervals are left to the caller (package
// report's Wilson interval: report imports selfplay, so selfplay cannot import it): feed Tally to
// report.WinTally.Add.
type SpyEvalResult struct {
	Decision     string           `json:"decision"`
	Players      int              `json:"players"`
	Rounds       int              `json:"rounds"`
	HeldOutPairs int              `json:"held_out_pairs"`
	Outcomes     []SpyEvalOutcome `json:"outcomes"`
	Candidate    SpyEvalPlayer    `json:"candidate"`
	Reference    SpyEvalPlayer    `json:"reference"`
	Rollout      Rollout          `json:"-"`
	// Games are the transcripts, for games.jsonl.
	Games []*SpyGame `json:"-"`
}

func (r *SpyEvalResult) addGame(g *SpyGame) {
	side := CandidateSide(g.ID)
	won := g.SpyCaught == (side == SpyEvalCivilians)
	r.Outcomes = append(r.Outcomes, SpyEvalOutcome{Game: g.ID, Pair: g.PairID, Side: side, Spy: g.Spy,
		Accused: g.Accused, SpyCaught: g.SpyCaught, Won: won})
	r.Games = append(r.Games, g)
	for _, x := range g.Samples {
		// The candidate sits in the spy's seat or in the civilians' seats; the observer (player 0)
		// is always the reference.
		cand := x.Player != 0 && (x.Player == g.Spy) == (side == SpyEvalSpy)
		p := &r.Reference
		if cand {
			p = &r.Candidate
		}
		p.Completions++
		p.Tokens += x.TokenCount()
		p.Chars += utf8.RuneCountInString(x.Text)
		if x.Stage != StageDecision || x.Vote == nil {
			continue
		}
		p.Decisions++
		switch {
		case x.Vote.Kind == VoteAbstain:
			p.Abstained++
		case x.Vote.Kind == VoteInvalid:
			p.Invalid++
		case x.Vote.Player == g.Spy:
			p.Correct++
		}
	}
}

// Tally feeds every game to add as (side the candidate played, won): pass report.WinTally.Add.
func (r *SpyEvalResult) Tally(add func(role string, won bool)) {
	for _, o := range r.Outcomes {
		add(o.Side, o.Won)
	}
}

// Wins counts the candidate's wins on one side ("" for all games).
func (r *SpyEvalResult) Wins(side string) (wins, games int) {
	for _, o := range r.Outcomes {
		if side == "" || o.Side == side {
			games++
			if o.Won {
				wins++
			}
		}
	}
	return wins, games
}

// Judge says who decided the games: the civilians (vote) or the reference as the fixed observer.
func (r *SpyEvalResult) Judge() string {
	if r.Decision == DecisionObserver {
		return "the reference observes and judges every game"
	}
	return "the civilians vote"
}

// Summary is the result on one screen. interval gives the 95% interval of wins out of games
// (report.Tally.Interval, the Wilson interval); names label the two sides.
func (r *SpyEvalResult) Summary(candidate, reference string, interval func(wins, games int) (low, high float64)) string {
	var b strings.Builder
	_, n := r.Wins("")
	rounds := "clue rounds"
	if r.Rounds == 1 {
		rounds = "clue round"
	}
	fmt.Fprintf(&b, "%s vs %s: %d games on %d held-out pairs, %d players, %d %s; %s\n",
		candidate, reference, n, r.HeldOutPairs, r.Players, r.Rounds, rounds, r.Judge())
	line := func(label, side string) {
		w, n := r.Wins(side)
		lo, hi := interval(w, n)
		fmt.Fprintf(&b, "  %-24s %5.1f%%  [%5.1f%%, %5.1f%%]  %d/%d\n", label, 100*spyEvalRate(w, n), 100*lo, 100*hi, w, n)
	}
	fmt.Fprintf(&b, "win rate of %s (Wilson 95%% interval)\n", candidate)
	line("overall", "")
	line("as the spy", SpyEvalSpy)
	line("as the civilians", SpyEvalCivilians)
	fmt.Fprintf(&b, "  %-24s %14s %14s\n", "", trimLabel(candidate), trimLabel(reference))
	row := func(label string, f func(SpyEvalPlayer) string) {
		fmt.Fprintf(&b, "  %-24s %14s %14s\n", label, f(r.Candidate), f(r.Reference))
	}
	pct := func(p SpyEvalPlayer, v float64) string {
		if p.Decisions == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", 100*v)
	}
	row("decisions", func(p SpyEvalPlayer) string { return fmt.Sprint(p.Decisions) })
	row("decision accuracy", func(p SpyEvalPlayer) string { return pct(p, p.Accuracy()) })
	row("abstain rate", func(p SpyEvalPlayer) string { return pct(p, p.AbstainRate()) })
	row("invalid rate", func(p SpyEvalPlayer) string { return pct(p, p.InvalidRate()) })
	row("completions", func(p SpyEvalPlayer) string { return fmt.Sprint(p.Completions) })
	row("mean length, tokens", func(p SpyEvalPlayer) string {
		if p.Tokens == 0 {
			return "n/a" // the backend reports no tokens (scripted, some Ollama calls)
		}
		return fmt.Sprintf("%.1f", p.MeanTokens())
	})
	row("mean length, characters", func(p SpyEvalPlayer) string { return fmt.Sprintf("%.1f", p.MeanChars()) })
	if tps := r.Rollout.TokensPerSecond(); tps > 0 {
		fmt.Fprintf(&b, "  %d model calls, %d completions, %.1f tokens/s\n", r.Rollout.Calls, r.Rollout.Samples, tps)
	}
	return b.String()
}

// trimLabel keeps a column label (an adapter path, say) within its column.
func trimLabel(s string) string {
	s = filepath.Base(s)
	if r := []rune(s); len(r) > 14 {
		return "…" + string(r[len(r)-13:])
	}
	return s
}

// SpyEvalAdapterFile resolves one side of `vzlocal eval`: a training run folder gives its newest
// adapter (adapter.gguf), a file is taken as the adapter itself.
func SpyEvalAdapterFile(input string) (string, error) {
	st, err := os.Stat(input)
	if err != nil {
		return "", fmt.Errorf("eval: %w", err)
	}
	if !st.IsDir() {
		return input, nil
	}
	path := filepath.Join(input, "adapter.gguf")
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("eval: run folder %s has no adapter.gguf (has the run finished an optimizer step?)", input)
		}
		return "", fmt.Errorf("eval: %w", err)
	}
	return path, nil
}

// LoadSpyEvalAdapter loads one side for m: "base" is the base model (nil), a run folder its
// adapter.gguf, else an adapter GGUF. An adapter made for another model is an error that says so.
func LoadSpyEvalAdapter(m *llm.Model, input string) (*llm.Adapter, error) {
	if input == SpyEvalBase {
		return nil, nil
	}
	path, err := SpyEvalAdapterFile(input)
	if err != nil {
		return nil, err
	}
	a, err := m.LoadAdapter(path)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	return a, nil
}
