package selfplay

import (
	"fmt"
	"unicode/utf8"
)

// SpySummary aggregates scored games: what `vzlocal play` prints at the end and what a trainer
// can log per step.
type SpySummary struct {
	Games           int     `json:"games"`
	SpyCaughtRate   float64 `json:"spy_caught_rate"`   // games whose most-voted player is the spy
	DecisionAcc     float64 `json:"decision_accuracy"` // decision samples that named the spy
	AbstainRate     float64 `json:"abstain_rate"`      // decision samples that answered N/A
	InvalidRate     float64 `json:"invalid_rate"`      // decision samples with no parsable vote
	ClueMissingRate float64 `json:"clue_missing_rate"` // clues shown as the placeholder
	MeanClueChars   float64 `json:"mean_clue_chars"`   // characters of the clues players saw (placeholders excluded)
	DecisionReward  float64 `json:"decision_reward_mean"`
	TokensPerSecond float64 `json:"tokens_per_s"`
}

// SummarizeSpyGames computes the summary of scored games; rollout gives the throughput.
func SummarizeSpyGames(games []*SpyGame, rollout Rollout) SpySummary {
	var s SpySummary
	var dec, clues, clueOK, caught int
	var clueChars int
	for _, g := range games {
		s.Games++
		if g.SpyCaught {
			caught++
		}
		for _, x := range g.Samples {
			switch x.Stage {
			case StageDecision:
				dec++
				s.DecisionReward += x.Reward
				if x.Vote == nil {
					continue
				}
				switch {
				case x.Vote.Kind == VoteAbstain:
					s.AbstainRate++
				case x.Vote.Kind == VoteInvalid:
					s.InvalidRate++
				case x.Vote.Player == g.Spy:
					s.DecisionAcc++
				}
			case StageClue:
				clues++
				if x.ClueOK {
					clueOK++
					clueChars += utf8.RuneCountInString(x.Clue)
				}
			}
		}
	}
	if s.Games > 0 {
		s.SpyCaughtRate = float64(caught) / float64(s.Games)
	}
	if dec > 0 {
		s.DecisionAcc /= float64(dec)
		s.AbstainRate /= float64(dec)
		s.InvalidRate /= float64(dec)
		s.DecisionReward /= float64(dec)
	}
	if clues > 0 {
		s.ClueMissingRate = float64(clues-clueOK) / float64(clues)
	}
	if clueOK > 0 {
		s.MeanClueChars = float64(clueChars) / float64(clueOK)
	}
	s.TokensPerSecond = rollout.TokensPerSecond()
	return s
}

// String is the summary as one paragraph for people.
func (s SpySummary) String() string {
	tps := "n/a (backend reports no tokens)"
	if s.TokensPerSecond > 0 {
		tps = fmt.Sprintf("%.1f", s.TokensPerSecond)
	}
	return fmt.Sprintf("%d games: spy caught %.1f%%, decision accuracy %.1f%%, abstain %.1f%%, invalid %.1f%%, "+
		"clues missing %.1f%%, mean clue length %.1f chars, mean decision reward %.3f, tokens/s %s",
		s.Games, 100*s.SpyCaughtRate, 100*s.DecisionAcc, 100*s.AbstainRate, 100*s.InvalidRate,
		100*s.ClueMissingRate, s.MeanClueChars, s.DecisionReward, tps)
}
