package selfplay

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
)

// Spy image modes and decision modes of the "Who is the Spy" game (games.md 1.1).
const (
	SpyImageModified = "modified" // the spy sees the modified image (official code; default)
	SpyImageBlank    = "blank"    // the spy sees a blank image of the same size (later paper version)

	DecisionObserver = "observer" // one observer prompt on the original image, sampled G times (default)
	DecisionVote     = "vote"     // every civilian votes; the spy does not

	RewardCode  = "code"  // 0.3*(2*fmt-1) + 1.2*acc + 0.99*[correct] (official code; default)
	RewardPaper = "paper" // acc alone
)

// Stages of a game, as recorded on every sample.
const (
	StageClue     = "clue"
	StageDecision = "decision"
)

// Roles of the spy game, as sent in Request.Role and recorded on samples.
const (
	RoleCivilian = "civilian"
	RoleSpy      = "spy"
	RoleObserver = "observer"
	RoleVoter    = "voter"
)

// StageSampling is how one stage samples from the policy.
type StageSampling struct {
	Temperature float64 `json:"temperature" yaml:"temperature"`
	MaxTokens   int     `json:"max_tokens" yaml:"max_tokens"`
}

// SpySettings are all the settings of the "Who is the Spy" game. Defaults are the official code's
// (games.md 1.1, 1.2, 1.5).
type SpySettings struct {
	Players  int    `json:"players" yaml:"players"`     // N, at least 3 (two civilians to compare)
	Rounds   int    `json:"rounds" yaml:"rounds"`       // R clue rounds
	SpyImage string `json:"spy_image" yaml:"spy_image"` // modified | blank
	Decision string `json:"decision" yaml:"decision"`   // observer | vote
	// ObserverSamples is G, the number of observer samples per game in observer mode.
	ObserverSamples int `json:"observer_samples" yaml:"observer_samples"`
	// VoteSamples is the number of samples of each civilian's vote in vote mode.
	VoteSamples    int     `json:"vote_samples" yaml:"vote_samples"`
	DecisionReward string  `json:"decision_reward" yaml:"decision_reward"` // code | paper
	Beta           float64 `json:"beta" yaml:"beta"`                       // zero-sum clue reward scale
	Lambda         float64 `json:"lambda" yaml:"lambda"`                   // civilian vote-spread penalty
	Alpha          float64 `json:"alpha" yaml:"alpha"`                     // RAE baseline EMA factor
	// AdvEps is added to the population std of a game's decision rewards (games.md 1.2: 1e-8).
	AdvEps float64 `json:"adv_eps" yaml:"adv_eps"`

	Clue     StageSampling `json:"clue" yaml:"clue"`
	Decide   StageSampling `json:"decide" yaml:"decide"`
	Seed     int64         `json:"seed" yaml:"seed"`
	BlankDir string        `json:"blank_dir,omitempty" yaml:"blank_dir,omitempty"` // where blank spy images are written
}

// DefaultSpySettings returns the official code's settings.
func DefaultSpySettings() SpySettings {
	return SpySettings{
		Players:         4,
		Rounds:          2,
		SpyImage:        SpyImageModified,
		Decision:        DecisionObserver,
		ObserverSamples: 8,
		VoteSamples:     1,
		DecisionReward:  RewardCode,
		Beta:            0.1,
		Lambda:          0.1,
		Alpha:           0.9,
		AdvEps:          SpyAdvEps,
		Clue:            StageSampling{Temperature: 0.8, MaxTokens: 1024},
		Decide:          StageSampling{Temperature: 0.8, MaxTokens: 1024},
	}
}

// Validate reports the first setting that cannot be played.
func (s SpySettings) Validate() error {
	switch {
	case s.Players < 3 || s.Players > 9:
		// Votes are single digits 1-9 (games.md 1.1), and a spy needs two civilians to differ from.
		return fmt.Errorf("spy game: players = %d, want 3 to 9", s.Players)
	case s.Rounds < 1:
		return fmt.Errorf("spy game: rounds = %d, want at least 1", s.Rounds)
	case s.SpyImage != SpyImageModified && s.SpyImage != SpyImageBlank:
		return fmt.Errorf("spy game: spy image %q, want %q or %q", s.SpyImage, SpyImageModified, SpyImageBlank)
	case s.Decision != DecisionObserver && s.Decision != DecisionVote:
		return fmt.Errorf("spy game: decision %q, want %q or %q", s.Decision, DecisionObserver, DecisionVote)
	case s.Decision == DecisionObserver && s.ObserverSamples < 1:
		return fmt.Errorf("spy game: observer samples = %d, want at least 1", s.ObserverSamples)
	case s.Decision == DecisionVote && s.VoteSamples < 1:
		return fmt.Errorf("spy game: vote samples = %d, want at least 1", s.VoteSamples)
	case s.DecisionReward != RewardCode && s.DecisionReward != RewardPaper:
		return fmt.Errorf("spy game: decision reward %q, want %q or %q", s.DecisionReward, RewardCode, RewardPaper)
	case s.Beta < 0 || s.Lambda < 0:
		return fmt.Errorf("spy game: beta %g and lambda %g must not be negative", s.Beta, s.Lambda)
	case !(s.AdvEps >= 0) || math.IsInf(s.AdvEps, 0):
		return fmt.Errorf("spy game: advantage eps %v, want a finite value >= 0", s.AdvEps)
	case s.Alpha < 0 || s.Alpha >= 1:
		return fmt.Errorf("spy game: RAE alpha = %g, want 0 <= alpha < 1", s.Alpha)
	case !(s.Clue.Temperature >= 0) || !(s.Decide.Temperature >= 0) || math.IsInf(s.Clue.Temperature, 0) || math.IsInf(s.Decide.Temperature, 0):
		return fmt.Errorf("spy game: sampling temperature %v (clues) and %v (decisions): want finite values >= 0", s.Clue.Temperature, s.Decide.Temperature)
	case s.Clue.MaxTokens < 0 || s.Decide.MaxTokens < 0:
		return fmt.Errorf("spy game: negative max tokens")
	}
	return nil
}

// blankDir is where blank spy images go when BlankDir is not set.
func (s SpySettings) blankDir() string {
	if s.BlankDir != "" {
		return s.BlankDir
	}
	return filepath.Join(os.TempDir(), "vzlocal-blank")
}
