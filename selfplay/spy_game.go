package selfplay

import (
	"fmt"

	"github.com/vzlocal/vzlocal/data"
)

// SpyGame is the full record of one "Who is the Spy" game: the setup, every model call in the order
// it was made, and (after Score) the outcome, rewards and advantages. games.jsonl holds one SpyGame
// per line.
type SpyGame struct {
	ID       int    `json:"game"`
	Seed     int64  `json:"seed"` // the settings seed; the spy is drawn from (seed, game id)
	PairID   string `json:"pair"`
	PairKind string `json:"pair_kind,omitempty"`
	Original string `json:"original"`  // image the civilians (and the observer) see
	Modified string `json:"modified"`  // the pair's modified image
	SpyImage string `json:"spy_image"` // image the spy saw: Modified, or a blank image
	Players  int    `json:"players"`
	Rounds   int    `json:"rounds"`
	Decision string `json:"decision"` // observer | vote
	Spy      int    `json:"spy"`      // 1..Players

	// Samples are every model call's outputs in the order the turns were played: the clue stage
	// round by round, players 1..N, then the decision samples.
	Samples []*SpySample `json:"samples"`

	SpyOutcome
	Pair *data.Pair `json:"-"`
}

// SpyOutcome is what Score adds to a game.
type SpyOutcome struct {
	Scored bool `json:"scored"`
	// Tally[p-1] is the number of decision samples that voted for player p.
	Tally []int   `json:"tally,omitempty"`
	Psi   float64 `json:"psi"`
	// Accused is the player with the most votes, 0 when no player has more votes than every other.
	Accused   int  `json:"accused"`
	SpyCaught bool `json:"spy_caught"`
	// ClueRewards[p-1] and ClueAdvantages[p-1] are player p's zero-sum clue reward and its RAE
	// advantage (the same for each of its R clues).
	ClueRewards    []float64 `json:"clue_rewards,omitempty"`
	ClueAdvantages []float64 `json:"clue_advantages,omitempty"`
	BaselineSpy    float64   `json:"baseline_spy"` // RAE baselines after this game's update
	BaselineCiv    float64   `json:"baseline_civ"`
}

// SpySample is one sampled completion of one model call, with what the trainer needs.
type SpySample struct {
	Game   int    `json:"game"`
	Turn   int    `json:"turn"` // 0-based index of the model call in the game (samples of one call share it)
	Stage  string `json:"stage"`
	Round  int    `json:"round"`  // 1..R in the clue stage, 0 in the decision stage
	Player int    `json:"player"` // 1..N; 0 for the observer
	Role   string `json:"role"`
	Index  int    `json:"index"` // sample index within the call (0..G-1 for the observer)

	System string `json:"system"`
	Prompt string `json:"prompt"`
	Image  string `json:"image"`
	Text   string `json:"text"`

	PromptTokens []int32     `json:"prompt_tokens,omitempty"`
	Tokens       []int32     `json:"tokens,omitempty"`
	LogProbs     []float32   `json:"logprobs,omitempty"`
	ImageSpans   []ImageSpan `json:"image_spans,omitempty"`
	Finish       string      `json:"finish,omitempty"`
	EvalCount    int         `json:"eval_count,omitempty"`

	Reasoning string   `json:"reasoning"`
	Clue      string   `json:"clue,omitempty"` // clue stage: what later players were shown
	ClueOK    bool     `json:"clue_ok,omitempty"`
	Vote      *SpyVote `json:"vote,omitempty"` // decision stage
	FormatOK  bool     `json:"format_ok"`

	Reward    float64 `json:"reward"`
	Advantage float64 `json:"advantage"`
}

// Completion returns the sample as the backend produced it.
func (s *SpySample) Completion() Completion {
	return Completion{Text: s.Text, PromptTokens: s.PromptTokens, Tokens: s.Tokens, LogProbs: s.LogProbs,
		Finish: s.Finish, EvalCount: s.EvalCount, ImageSpans: s.ImageSpans}
}

// TokenCount is the number of sampled tokens (ids when the backend gave them, else its count).
func (s *SpySample) TokenCount() int {
	if len(s.Tokens) > 0 {
		return len(s.Tokens)
	}
	return s.EvalCount
}

// SpySamplesOf returns the samples of one stage (StageClue or StageDecision; "" for all) of the
// games, in game and turn order: what a trainer feeds to the loss of the active phase.
func SpySamplesOf(games []*SpyGame, stage string) []*SpySample {
	var out []*SpySample
	for _, g := range games {
		for _, s := range g.Samples {
			if stage == "" || s.Stage == stage {
				out = append(out, s)
			}
		}
	}
	return out
}

// clueLines is the public history of the game so far, as player `viewer` sees it (answers only).
func (g *SpyGame) clueLines(viewer int) []SpyClueLine {
	var lines []SpyClueLine
	for _, s := range g.Samples {
		if s.Stage == StageClue {
			lines = append(lines, SpyClueLine{Round: s.Round, Player: s.Player, Text: s.Clue, Mine: s.Player == viewer})
		}
	}
	return lines
}

// ownNotes is player p's own earlier private reasoning; nobody else's ever enters its prompt.
func (g *SpyGame) ownNotes(p int) []SpyNote {
	var notes []SpyNote
	for _, s := range g.Samples {
		if s.Stage == StageClue && s.Player == p && s.Reasoning != "" {
			notes = append(notes, SpyNote{Round: s.Round, Reasoning: s.Reasoning})
		}
	}
	return notes
}

// Score parses nothing new: it turns the recorded votes into decision rewards and group-normalised
// advantages, and the vote tally into zero-sum clue rewards with RAE advantages. It updates rae
// (once per game, before subtracting, as games.md 1.2 says); call it for every game in both phases.
// A game record that cannot be scored (say, read from a damaged file) is an error, not a panic.
func (g *SpyGame) Score(s SpySettings, rae *SpyRAE) error {
	if g.Players < 3 || g.Spy < 1 || g.Spy > g.Players {
		return fmt.Errorf("game %d: cannot score %d players with spy %d", g.ID, g.Players, g.Spy)
	}
	if rae == nil {
		return fmt.Errorf("game %d: no RAE baselines to score with", g.ID)
	}
	for _, x := range g.Samples {
		if x.Stage == StageClue && (x.Player < 1 || x.Player > g.Players) {
			return fmt.Errorf("game %d: clue of player %d in a %d-player game", g.ID, x.Player, g.Players)
		}
	}
	var dec []*SpySample
	var votes []SpyVote
	for _, x := range g.Samples {
		if x.Stage == StageDecision && x.Vote != nil {
			dec = append(dec, x)
			votes = append(votes, *x.Vote)
		}
	}
	rewards := make([]float64, len(dec))
	for i, x := range dec {
		x.Reward = SpyDecisionReward(s.DecisionReward, *x.Vote, x.FormatOK, g.Spy)
		rewards[i] = x.Reward
	}
	for i, a := range spyGroupAdvantages(rewards, s.AdvEps) {
		dec[i].Advantage = a
	}

	tally := SpyTally(votes, g.Players)
	clueR, psi := SpyClueRewards(tally, g.Spy, s.Beta, s.Lambda)
	clueA := rae.Update(clueR, g.Spy)
	for _, x := range g.Samples {
		if x.Stage == StageClue {
			x.Reward, x.Advantage = clueR[x.Player], clueA[x.Player]
		}
	}
	g.SpyOutcome = SpyOutcome{
		Scored:         true,
		Tally:          tally[1:],
		Psi:            psi,
		Accused:        spyPlurality(tally),
		ClueRewards:    clueR[1:],
		ClueAdvantages: clueA[1:],
		BaselineSpy:    rae.Spy,
		BaselineCiv:    rae.Civ,
	}
	g.SpyCaught = g.Accused == g.Spy
	return nil
}

// spyPlurality is the player with strictly the most votes (tally index 0 unused), else 0.
func spyPlurality(tally []int) int {
	best, bestN, tie := 0, 0, false
	for p := 1; p < len(tally); p++ {
		switch {
		case tally[p] > bestN:
			best, bestN, tie = p, tally[p], false
		case tally[p] == bestN && bestN > 0:
			tie = true
		}
	}
	if tie {
		return 0
	}
	return best
}
