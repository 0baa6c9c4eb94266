package selfplay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vzlocal/vzlocal/internal/atomicfile"
)

// QSGamesFile is the transcript file of the Questioner/Solver game: one JSON value per line, a
// QSRecord per question (kind "question") and a QSSummary per step (kind "step").
const QSGamesFile = "games.jsonl"

// Kinds of the lines of a Questioner/Solver transcript.
const (
	QSKindQuestion = "question"
	QSKindStep     = "step"
)

// QSRecord is one Questioner output with everything that came of it: the parsed question, the
// Solver answers that voted on it, and in the Questioner stage its reward, in the Solver stage
// its pseudo-label and the trained Solver's answers.
type QSRecord struct {
	Kind      string `json:"kind"` // QSKindQuestion
	Step      int    `json:"step"`
	Stage     string `json:"stage"`               // StageQuestioner or StageSolver
	Iteration int    `json:"iteration,omitempty"` // set by the trainer (1-based)
	ImageID   string `json:"image_id"`
	Image     string `json:"image"`
	Slot      int    `json:"slot"`  // the image's index within the step
	Index     int    `json:"index"` // the question's index within the image's group (0..G_Q-1)

	Output   string `json:"output"` // the Questioner's raw text
	Valid    bool   `json:"valid"`
	Error    string `json:"error,omitempty"` // why the output is not a valid question
	Question string `json:"question,omitempty"`
	Quick    string `json:"quick_answer,omitempty"` // the Questioner's own answer letter

	// Votes are the Solver answers to the question: the frozen current Solver's m answers in
	// the Questioner stage, the previous Solver's answers in the Solver stage.
	Votes []QSAnswer `json:"votes,omitempty"`
	// Vote (Questioner stage) is the majority of Votes; Reward and Advantage are the question's.
	Vote      *QSVoteRecord `json:"vote,omitempty"`
	Reward    *float64      `json:"reward,omitempty"`
	Advantage *float64      `json:"advantage,omitempty"`
	// Label (Solver stage) is the pseudo-label of Votes with the confidence filter's verdict;
	// Solver holds the current Solver's G_S answers to a kept question, with rewards.
	Label  *QSLabelRecord `json:"label,omitempty"`
	Solver []QSAnswer     `json:"solver,omitempty"`

	// The Questioner's completion as the backend produced it (for training): not in the JSON.
	completion Completion
}

// QSVoteRecord is a QSVote as the transcript records it.
type QSVoteRecord struct {
	Answer     string  `json:"answer"`
	Count      int     `json:"count"`
	Total      int     `json:"total"`
	Confidence float64 `json:"confidence"`
}

func qsVoteRecord(v QSVote) *QSVoteRecord {
	return &QSVoteRecord{Answer: v.Answer, Count: v.Count, Total: v.Total, Confidence: v.Confidence}
}

// QSLabelRecord is a QSLabel as the transcript records it.
type QSLabelRecord struct {
	Label      string  `json:"label"`
	Count      int     `json:"count"`
	Total      int     `json:"total"`
	Confidence float64 `json:"confidence"`
	Keep       bool    `json:"keep"`
}

func qsLabelRecord(l QSLabel) *QSLabelRecord {
	return &QSLabelRecord{Label: l.Label, Count: l.Count, Total: l.Total, Confidence: l.Confidence, Keep: l.Keep}
}

// QSAnswer is one Solver completion.
type QSAnswer struct {
	Text      string  `json:"text"`
	Answer    string  `json:"answer"` // QSExtractAnswer(Text)
	Reward    float64 `json:"reward,omitempty"`
	Advantage float64 `json:"advantage,omitempty"`
}

// QSSummary is a step's numbers, also written as a transcript line (kind "step"). Rates whose
// denominator is zero are 0.
type QSSummary struct {
	Kind      string `json:"kind"` // QSKindStep
	Step      int    `json:"step"`
	Stage     string `json:"stage"`
	Iteration int    `json:"iteration,omitempty"`
	Images    int    `json:"images"`
	Questions int    `json:"questions"` // Questioner outputs
	Valid     int    `json:"valid"`
	// ValidRate is Valid / Questions.
	ValidRate float64 `json:"valid_rate"`
	// MeanConfidence is the mean majority confidence over valid questions: of the Solver's vote
	// (Questioner stage) or of the pseudo-label before the filter (Solver stage).
	MeanConfidence float64 `json:"mean_confidence"`
	// Kept and KeptFraction (Solver stage): valid questions that passed the confidence filter,
	// and their share of the valid questions.
	Kept         int     `json:"kept"`
	KeptFraction float64 `json:"kept_fraction"`
	// QuestionerRewardMean/Std (Questioner stage): over every output, invalid ones (-1) included.
	QuestionerRewardMean float64 `json:"questioner_reward_mean"`
	QuestionerRewardStd  float64 `json:"questioner_reward_std"`
	// SolverAccuracy is the share of Solver answers that equal the key: the current Solver's G_S
	// answers against the pseudo-label (Solver stage), the frozen Solver's m answers against the
	// Questioner's quick answer (Questioner stage).
	SolverAccuracy float64 `json:"solver_accuracy"`
	// AbstainRate is the share of all Solver answers of the step without an option letter
	// (no box, or a box holding something else).
	AbstainRate float64 `json:"abstain_rate"`
	// RewardMean/Std are over the samples the step trains; FracZeroStd is the share of its
	// groups whose rewards are all equal (no gradient).
	RewardMean  float64 `json:"reward_mean"`
	RewardStd   float64 `json:"reward_std"`
	FracZeroStd float64 `json:"frac_zero_std"`
	Groups      int     `json:"groups"`
	Samples     int     `json:"samples"`
}

// WriteQSRecords writes records and summaries (any JSON values) as JSONL to path atomically.
func WriteQSRecords(path string, lines []any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i, l := range lines {
		if err := enc.Encode(l); err != nil {
			return fmt.Errorf("%s: line %d: %w", path, i+1, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
