package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rs/zerolog/log"
	"golang.org/x/term"

	"github.com/vzlocal/vzlocal/selfplay"
)

// qsPlayFlags are the settings of `vzlocal play --game qs` (games.md section 2 defaults).
type qsPlayFlags struct {
	Questions     int     `help:"G_Q: questions per image in the Questioner stage." default:"4"`
	SolverVotes   int     `help:"m: Solver answers per question for the Questioner's reward." default:"10"`
	LabelVotes    int     `help:"Solver answers per question for the pseudo-label in the Solver stage." default:"10"`
	SolverSamples int     `help:"G_S: Solver answers per kept question." default:"5"`
	MinConfidence float64 `help:"Keep a question when its pseudo-label confidence is at least this." default:"0.3"`
	MaxConfidence float64 `help:"Keep a question when its pseudo-label confidence is at most this." default:"0.8"`
	Temperature   float64 `help:"Sampling temperature of every turn." default:"1.0"`
	MaxTokens     int     `help:"Most new tokens per completion." default:"1024"`
}

// runQS plays the Questioner/Solver game: each batch of images plays a Questioner step and a
// Solver step with one policy in both roles (no adapters: nothing is trained).
func (c *playCmd) runQS(ctx context.Context) error {
	if c.HTML != "" {
		return errors.New("vzlocal play --game qs: --html is available for the spy game only; the transcript is in games.jsonl")
	}
	f := c.QS
	s := selfplay.DefaultQSSettings()
	s.Questions, s.SolverVotes, s.LabelVotes, s.SolverSamples = f.Questions, f.SolverVotes, f.LabelVotes, f.SolverSamples
	s.MinConfidence, s.MaxConfidence, s.Seed = f.MinConfidence, f.MaxConfidence, c.Seed
	s.Question = selfplay.StageSampling{Temperature: f.Temperature, MaxTokens: f.MaxTokens}
	s.Answer = s.Question
	if err := s.Validate(); err != nil {
		return err
	}
	prompts, err := selfplay.LoadQSPrompts(c.Prompts)
	if err != nil {
		return err
	}
	images, err := selfplay.LoadQSImages(c.Images)
	if err != nil {
		return err
	}
	questioner, solver, err := c.qsPolicies(ctx)
	if err != nil {
		return err
	}
	if cl, ok := questioner.(io.Closer); ok {
		defer cl.Close()
	}
	color := c.Color == "always" || (c.Color == "auto" && term.IsTerminal(int(os.Stdout.Fd())))
	log.Info().Int("images", len(images)).Int("playing", c.Games).Msg("playing the questioner/solver game")
	res, err := selfplay.RunQSPlay(ctx, selfplay.QSPlayConfig{
		Settings: s, Prompts: prompts, Images: images, Count: c.Games, Batch: c.Batch,
		OutDir: c.Out, Out: os.Stdout, Color: color,
	}, questioner, solver)
	if res != nil && len(res.Steps) > 0 {
		log.Info().Str("file", res.File).Int("steps", len(res.Steps)).Msg("transcript written")
	}
	if err != nil {
		return err
	}
	q, sv := res.Questioner, res.Solver
	fmt.Printf("questioner stage: %d/%d valid questions, mean confidence %.2f, reward %.3f ± %.3f\n",
		q.Valid, q.Questions, q.MeanConfidence, q.QuestionerRewardMean, q.QuestionerRewardStd)
	fmt.Printf("solver stage: %d/%d valid questions, %d kept (%.0f%%), solver accuracy vs pseudo-labels %.0f%%\n",
		sv.Valid, sv.Questions, sv.Kept, 100*sv.KeptFraction, 100*sv.SolverAccuracy)
	return nil
}

// qsPolicies returns the Questioner and the Solver: scripted players (different seeds), or one
// model backend playing both roles.
func (c *playCmd) qsPolicies(ctx context.Context) (selfplay.Policy, selfplay.Policy, error) {
	if c.Scripted {
		return selfplay.NewScriptedQSPolicy(c.Seed), selfplay.NewScriptedQSPolicy(c.Seed + 1), nil
	}
	p, err := c.policy(ctx)
	if err != nil {
		return nil, nil, err
	}
	return p, p, nil
}
