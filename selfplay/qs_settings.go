package selfplay

import (
	"fmt"
	"math"
)

// Stages and roles of V-Zero's Questioner/Solver game (games.md section 2), as recorded on
// requests, records and metrics.
const (
	StageQuestioner = "questioner"
	StageSolver     = "solver"

	RoleQuestioner = "questioner"
	RoleSolver     = "solver"
)

// QSSettings are all the settings of the Questioner/Solver game. Defaults are games.md section 2.
type QSSettings struct {
	// Questions is G_Q, the questions sampled per image in the Questioner stage (one GRPO group).
	Questions int `json:"questions" yaml:"questions"`
	// SolverVotes is m, the frozen Solver's answers to each valid question that the dual-track
	// Questioner reward votes on.
	SolverVotes int `json:"solver_votes" yaml:"solver_votes"`
	// LabelVotes is the previous Solver's answers per question that make its pseudo-label in the
	// Solver stage.
	LabelVotes int `json:"label_votes" yaml:"label_votes"`
	// SolverSamples is G_S, the current Solver's answers per kept question (one GRPO group).
	SolverSamples int `json:"solver_samples" yaml:"solver_samples"`
	// MinConfidence and MaxConfidence bound the pseudo-label confidence of kept questions.
	MinConfidence float64 `json:"min_confidence" yaml:"min_confidence"`
	MaxConfidence float64 `json:"max_confidence" yaml:"max_confidence"`
	// AdvEps is the epsilon of the GRPO std normalisation (games.md: 1e-6). AdvUnbiasedStd
	// divides the variance by n-1, as torch.std in EasyR1 (the V-Zero code base) does.
	AdvEps         float64 `json:"adv_eps" yaml:"adv_eps"`
	AdvUnbiasedStd bool    `json:"adv_unbiased_std" yaml:"adv_unbiased_std"`

	Question StageSampling `json:"question" yaml:"question"` // the Questioner's turns
	Answer   StageSampling `json:"answer" yaml:"answer"`     // every Solver turn
	Seed     int64         `json:"seed" yaml:"seed"`
}

// DefaultQSSettings returns games.md section 2: G_Q = 4, m = 10, 10 label votes, G_S = 5,
// keep 0.3 <= c <= 0.8, eps 1e-6, temperature 1.0.
func DefaultQSSettings() QSSettings {
	return QSSettings{
		Questions:      4,
		SolverVotes:    10,
		LabelVotes:     10,
		SolverSamples:  5,
		MinConfidence:  QSMinConfidence,
		MaxConfidence:  QSMaxConfidence,
		AdvEps:         1e-6,
		AdvUnbiasedStd: true,
		Question:       StageSampling{Temperature: 1.0, MaxTokens: 1024},
		Answer:         StageSampling{Temperature: 1.0, MaxTokens: 1024},
	}
}

// Validate reports the first setting that cannot be played.
func (s QSSettings) Validate() error {
	switch {
	case s.Questions < 1:
		return fmt.Errorf("qs game: questions per image = %d, want at least 1", s.Questions)
	case s.SolverVotes < 1:
		return fmt.Errorf("qs game: solver votes = %d, want at least 1", s.SolverVotes)
	case s.LabelVotes < 1:
		return fmt.Errorf("qs game: label votes = %d, want at least 1", s.LabelVotes)
	case s.SolverSamples < 1:
		return fmt.Errorf("qs game: solver samples = %d, want at least 1", s.SolverSamples)
	case !(s.MinConfidence >= 0 && s.MinConfidence <= s.MaxConfidence && s.MaxConfidence <= 1):
		return fmt.Errorf("qs game: confidence range [%v, %v], want 0 <= min <= max <= 1", s.MinConfidence, s.MaxConfidence)
	case !(s.AdvEps >= 0) || math.IsInf(s.AdvEps, 0):
		return fmt.Errorf("qs game: advantage eps %v, want a finite value >= 0", s.AdvEps)
	case !(s.Question.Temperature >= 0) || !(s.Answer.Temperature >= 0) || math.IsInf(s.Question.Temperature, 0) || math.IsInf(s.Answer.Temperature, 0):
		return fmt.Errorf("qs game: sampling temperature %v (questions) and %v (answers): want finite values >= 0", s.Question.Temperature, s.Answer.Temperature)
	case s.Question.MaxTokens < 0 || s.Answer.MaxTokens < 0:
		return fmt.Errorf("qs game: negative max tokens")
	}
	return nil
}
