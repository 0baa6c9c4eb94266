package selfplay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"

	"github.com/vzlocal/vzlocal/data"
)

// SpyEngine plays "Who is the Spy" games with a Policy. It is stateless between calls: the RAE
// baselines live with the caller (SpyGame.Score), so a trainer can checkpoint them.
//
// A training step with it:
//
//	games, rollout, err := eng.Play(ctx, policy, pairs, step*len(pairs))
//	for _, g := range games {
//		err := g.Score(eng.Settings, rae) // every phase: RAE baselines move once per game
//	}
//	samples := SpySamplesOf(games, StageClue) // or StageDecision: the active phase's samples
//	// each sample: Completion() (tokens, behaviour log-probs, image spans) and Advantage
//	blob, _ := json.Marshal(rae) // into the checkpoint; UnmarshalSpyRAE restores it
type SpyEngine struct {
	Settings SpySettings
	Prompts  *SpyPrompts
	// OnTurn, when set, is called after every model call of a game with that call's samples, in
	// play order: `vzlocal play` uses it to show games as they go.
	OnTurn func(g *SpyGame, samples []*SpySample)
}

// NewSpyEngine checks the settings and the prompts.
func NewSpyEngine(s SpySettings, p *SpyPrompts) (*SpyEngine, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("spy game: no prompts")
	}
	return &SpyEngine{Settings: s, Prompts: p}, nil
}

// SpyTruth is Request.Truth for spy game calls: what the scripted policy reads instead of looking
// at the image. Model backends ignore it.
type SpyTruth struct {
	Pair   *data.Pair
	Game   int
	Seed   int64
	Spy    int // for the record; the scripted observer and voters do not read it
	Prompt SpyPromptData
}

// SpyForGame is the spy of game id: uniform over 1..players, from the seeded RNG of (seed, id), so
// a game's setup does not depend on which batch it was played in.
func SpyForGame(seed int64, id, players int) int {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(id)))
	return rng.IntN(players) + 1
}

// Play plays one game on each pair, games numbered firstGame, firstGame+1, ... All games advance
// together: the requests of one turn (round r, player p) of every game go to the policy in one
// Complete call, then the decision stage in one call. The games come back unscored.
func (e *SpyEngine) Play(ctx context.Context, pol Policy, pairs []*data.Pair, firstGame int) ([]*SpyGame, Rollout, error) {
	var stats Rollout
	s := e.Settings
	games := make([]*SpyGame, len(pairs))
	for i, pair := range pairs {
		g, err := e.newGame(pair, firstGame+i)
		if err != nil {
			return nil, stats, err
		}
		games[i] = g
	}
	for r := 1; r <= s.Rounds; r++ {
		for p := 1; p <= s.Players; p++ {
			reqs := make([]Request, len(games))
			for i, g := range games {
				req, err := e.clueRequest(g, r, p)
				if err != nil {
					return nil, stats, err
				}
				reqs[i] = req
			}
			outs, err := callPolicy(ctx, pol, reqs, &stats)
			if err != nil {
				return nil, stats, fmt.Errorf("round %d, player %d: %w", r, p, err)
			}
			for i, g := range games {
				c := outs[i][0]
				x := e.sample(g, reqs[i], StageClue, r, 0, c)
				x.Clue, x.ClueOK = ParseClue(c.Text)
				x.FormatOK = x.ClueOK && len([]rune(x.Reasoning)) > 10
				g.Samples = append(g.Samples, x)
				if e.OnTurn != nil {
					e.OnTurn(g, []*SpySample{x})
				}
			}
		}
	}
	if err := e.decide(ctx, pol, games, &stats); err != nil {
		return nil, stats, err
	}
	return games, stats, nil
}

func (e *SpyEngine) newGame(pair *data.Pair, id int) (*SpyGame, error) {
	s := e.Settings
	if pair == nil {
		return nil, fmt.Errorf("game %d: no pair", id)
	}
	orig, mod := pair.OriginalPath(), pair.ModifiedPath()
	for _, f := range []string{orig, mod} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("pair %s: image %s: %w", pair.ID, f, err)
		}
	}
	spyImg := mod
	if s.SpyImage == SpyImageBlank {
		var err error
		if spyImg, err = blankImageFor(pair, s.blankDir()); err != nil {
			return nil, fmt.Errorf("pair %s: %w", pair.ID, err)
		}
	}
	return &SpyGame{
		ID: id, Seed: s.Seed, PairID: pair.ID, PairKind: pair.Kind,
		Original: orig, Modified: mod, SpyImage: spyImg,
		Players: s.Players, Rounds: s.Rounds, Decision: s.Decision,
		Spy:  SpyForGame(s.Seed, id, s.Players),
		Pair: pair,
	}, nil
}

func (e *SpyEngine) clueRequest(g *SpyGame, round, player int) (Request, error) {
	s := e.Settings
	d := SpyPromptData{
		Player: player, Players: s.Players, Round: round, Rounds: s.Rounds,
		IsSpy: player == g.Spy, Role: RoleCivilian, SpyImageBlank: s.SpyImage == SpyImageBlank,
		Clues: g.clueLines(player), OwnNotes: g.ownNotes(player),
	}
	img := g.Original
	if d.IsSpy {
		d.Role, img = RoleSpy, g.SpyImage
	}
	return e.request(g, d, SpyCluePrompt, img, 1, s.Clue)
}

func (e *SpyEngine) request(g *SpyGame, d SpyPromptData, tmpl, img string, n int, st StageSampling) (Request, error) {
	sys, err := e.Prompts.Render(SpySystemPrompt, d)
	if err != nil {
		return Request{}, err
	}
	user, err := e.Prompts.Render(tmpl, d)
	if err != nil {
		return Request{}, err
	}
	return Request{
		System: sys, User: user, Image: img, N: n, Player: d.Player, Role: d.Role,
		Temperature: st.Temperature, MaxTokens: st.MaxTokens,
		Truth: &SpyTruth{Pair: g.Pair, Game: g.ID, Seed: g.Seed, Spy: g.Spy, Prompt: d},
	}, nil
}

// decide runs the decision stage of every game in one Complete call.
func (e *SpyEngine) decide(ctx context.Context, pol Policy, games []*SpyGame, stats *Rollout) error {
	s := e.Settings
	var reqs []Request
	var owner []*SpyGame
	for _, g := range games {
		if s.Decision == DecisionObserver {
			d := SpyPromptData{Players: s.Players, Rounds: s.Rounds, Role: RoleObserver,
				SpyImageBlank: s.SpyImage == SpyImageBlank, Clues: g.clueLines(0)}
			req, err := e.request(g, d, SpyObserverPrompt, g.Original, s.ObserverSamples, s.Decide)
			if err != nil {
				return err
			}
			reqs, owner = append(reqs, req), append(owner, g)
			continue
		}
		for p := 1; p <= s.Players; p++ {
			if p == g.Spy {
				continue // the spy does not vote
			}
			d := SpyPromptData{Player: p, Players: s.Players, Rounds: s.Rounds, Role: RoleVoter,
				SpyImageBlank: s.SpyImage == SpyImageBlank, Clues: g.clueLines(p), OwnNotes: g.ownNotes(p)}
			req, err := e.request(g, d, SpyVoterPrompt, g.Original, s.VoteSamples, s.Decide)
			if err != nil {
				return err
			}
			reqs, owner = append(reqs, req), append(owner, g)
		}
	}
	outs, err := callPolicy(ctx, pol, reqs, stats)
	if err != nil {
		return fmt.Errorf("decision stage: %w", err)
	}
	for i, g := range owner {
		var turn []*SpySample
		for k, c := range outs[i] {
			x := e.sample(g, reqs[i], StageDecision, 0, k, c)
			v := ParseVote(c.Text)
			x.Vote, x.FormatOK = &v, spyFormatOK(c.Text, v)
			g.Samples = append(g.Samples, x)
			turn = append(turn, x)
		}
		if e.OnTurn != nil {
			e.OnTurn(g, turn)
		}
	}
	return nil
}

func (e *SpyEngine) sample(g *SpyGame, req Request, stage string, round, index int, c Completion) *SpySample {
	turn := 0
	if n := len(g.Samples); n > 0 {
		turn = g.Samples[n-1].Turn + 1
		if index > 0 {
			turn-- // later samples of the same call share its turn
		}
	}
	return &SpySample{
		Game: g.ID, Turn: turn, Stage: stage, Round: round, Player: req.Player, Role: req.Role, Index: index,
		System: req.System, Prompt: req.User, Image: req.Image, Text: c.Text,
		PromptTokens: c.PromptTokens, Tokens: c.Tokens, LogProbs: c.LogProbs, ImageSpans: c.ImageSpans,
		Finish: c.Finish, EvalCount: c.EvalCount,
		Reasoning: SpyReasoning(c.Text),
	}
}
