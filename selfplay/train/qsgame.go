package train

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/vzlocal/vzlocal/selfplay"
)

// The adapters of V-Zero's Questioner/Solver game, in Adapters() order: the last one (the
// Solver) is the run's primary adapter (adapter.gguf).
const (
	QSQuestioner = "questioner"
	QSSolver     = "solver"
)

// QSConfig is the Questioner/Solver game's part of a run's config (flags --qs-*). Defaults are
// games.md section 2; a stage's steps default to an even share of --steps.
type QSConfig struct {
	Iterations      int     `help:"Iterations; each trains the Questioner, then the Solver." default:"2"`
	QuestionerSteps int     `help:"Optimizer steps of each Questioner stage (0: steps / (2 * iterations))." default:"0"`
	SolverSteps     int     `help:"Optimizer steps of each Solver stage (0: steps / (2 * iterations))." default:"0"`
	Questions       int     `help:"G_Q: questions per image in the Questioner stage (one group)." default:"4"`
	SolverVotes     int     `help:"m: frozen Solver answers per question for the Questioner's reward." default:"10"`
	LabelVotes      int     `help:"Previous Solver answers per question for the pseudo-label." default:"10"`
	SolverSamples   int     `help:"G_S: current Solver answers per kept question (one group)." default:"5"`
	MinConfidence   float64 `help:"Keep a question when its pseudo-label confidence is at least this." default:"0.3"`
	MaxConfidence   float64 `help:"Keep a question when its pseudo-label confidence is at most this." default:"0.8"`
	Temperature     float64 `help:"Sampling temperature of every turn." default:"1.0"`
	QuestionTokens  int     `help:"Max new tokens of a Questioner turn." default:"512"`
	AnswerTokens    int     `help:"Max new tokens of a Solver turn." default:"512"`
	Prompts         string  `help:"Folder of prompt templates overriding the built-in ones (qs_questioner.tmpl, qs_solver.tmpl)."`
}

// Settings are the engine's settings of this config.
func (c QSConfig) Settings(seed int64) selfplay.QSSettings {
	s := selfplay.DefaultQSSettings()
	s.Questions, s.SolverVotes, s.LabelVotes, s.SolverSamples = c.Questions, c.SolverVotes, c.LabelVotes, c.SolverSamples
	s.MinConfidence, s.MaxConfidence = c.MinConfidence, c.MaxConfidence
	s.Question = selfplay.StageSampling{Temperature: c.Temperature, MaxTokens: c.QuestionTokens}
	s.Answer = selfplay.StageSampling{Temperature: c.Temperature, MaxTokens: c.AnswerTokens}
	s.Seed = seed
	return s
}

// Schedule is the stage schedule of this config for a run of totalSteps optimizer steps.
func (c QSConfig) Schedule(totalSteps int) QSSchedule {
	share := 1
	if c.Iterations > 0 {
		share = max(totalSteps/(2*c.Iterations), 1)
	}
	s := QSSchedule{Iterations: c.Iterations, QuestionerSteps: c.QuestionerSteps, SolverSteps: c.SolverSteps}
	if s.QuestionerSteps == 0 {
		s.QuestionerSteps = share
	}
	if s.SolverSteps == 0 {
		s.SolverSteps = share
	}
	return s
}

// QSSchedule is the order of stages: Iterations times a Questioner stage of QuestionerSteps
// steps, then a Solver stage of SolverSteps steps. A run longer than the schedule keeps
// alternating (the iteration count goes on); TotalSteps is the schedule's length.
type QSSchedule struct {
	Iterations      int `json:"iterations"`
	QuestionerSteps int `json:"questioner_steps"`
	SolverSteps     int `json:"solver_steps"`
}

// Validate rejects a schedule that cannot run.
func (s QSSchedule) Validate() error {
	if s.Iterations < 1 || s.QuestionerSteps < 1 || s.SolverSteps < 1 {
		return fmt.Errorf("qs game: %d iterations of %d questioner and %d solver steps: want each >= 1",
			s.Iterations, s.QuestionerSteps, s.SolverSteps)
	}
	return nil
}

// TotalSteps is the number of optimizer steps of the whole schedule.
func (s QSSchedule) TotalSteps() int { return s.Iterations * (s.QuestionerSteps + s.SolverSteps) }

func (s QSSchedule) stageSteps(stage string) int {
	if stage == selfplay.StageSolver {
		return s.SolverSteps
	}
	return s.QuestionerSteps
}

// QSGame is V-Zero's Questioner/Solver co-evolution as a trainer Game (games.md section 2). Two
// adapters over one base; each iteration trains the Questioner (against the current Solver,
// frozen since nothing trains it in that stage), then the Solver (on pseudo-labels of the Solver
// snapshot taken when the stage began). Each stage's KL reference is its adapter's snapshot at
// the stage start.
//
// Metrics (selfplay.StepMetrics) mapping: Phase = the stage; RewardMean/RewardStd/FracZeroStd
// over the trained samples and their groups; DecisionAccuracy = the Solver's accuracy against its
// key (pseudo-labels in the Solver stage, the Questioner's quick answers in the Questioner stage);
// AbstainRate = Solver answers without an option letter; InvalidRate = invalid questions. The
// rest (mean confidence, kept fraction, Questioner reward mean/std, counts) is the step's
// selfplay.QSSummary, the last transcript line of every step (kind "step") in games.jsonl.
type QSGame struct {
	engine  *selfplay.QSEngine
	images  []selfplay.QSImage
	perStep int
	seed    int64
	sched   QSSchedule
	st      qsGameState
}

// qsGameState is the game's checkpoint state: where in the schedule the next step is, and the
// schedule itself. A resumed run may change --steps, from which the stage lengths default: the
// saved schedule keeps a run's stages where they were.
type qsGameState struct {
	Stage        string      `json:"stage"`
	Iteration    int         `json:"iteration"` // 1-based
	StepsInStage int         `json:"steps_in_stage"`
	Switches     []int       `json:"switches"` // steps at which a new stage began
	Schedule     *QSSchedule `json:"schedule,omitempty"`
}

// NewQSGame prepares the game on a pool of unlabeled images (selfplay.QSImagesOfPairs: the
// pairs' original images), imagesPerStep of them per optimizer step.
func NewQSGame(eng *selfplay.QSEngine, images []selfplay.QSImage, imagesPerStep int, seed int64, sched QSSchedule) (*QSGame, error) {
	if eng == nil {
		return nil, fmt.Errorf("qs game: no engine")
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("qs game: no images")
	}
	if imagesPerStep < 1 {
		return nil, fmt.Errorf("qs game: images per step %d: want >= 1", imagesPerStep)
	}
	if err := sched.Validate(); err != nil {
		return nil, err
	}
	return &QSGame{
		engine: eng, images: images, perStep: imagesPerStep, seed: seed, sched: sched,
		st: qsGameState{Stage: selfplay.StageQuestioner, Iteration: 1},
	}, nil
}

// NewQSGameFromConfig builds the engine (prompts from c.Prompts) and the game for a run of
// totalSteps steps.
func NewQSGameFromConfig(c QSConfig, seed int64, images []selfplay.QSImage, imagesPerStep, totalSteps int) (*QSGame, error) {
	prompts, err := selfplay.LoadQSPrompts(c.Prompts)
	if err != nil {
		return nil, err
	}
	eng, err := selfplay.NewQSEngine(c.Settings(seed), prompts)
	if err != nil {
		return nil, err
	}
	return NewQSGame(eng, images, imagesPerStep, seed, c.Schedule(totalSteps))
}

func (g *QSGame) Adapters() []string { return []string{QSQuestioner, QSSolver} }

// Schedule is the game's stage schedule.
func (g *QSGame) Schedule() QSSchedule { return g.sched }

// Iteration is the iteration of the next step (1-based).
func (g *QSGame) Iteration() int { return g.st.Iteration }

func (g *QSGame) Plan() StepPlan {
	if g.st.Stage == selfplay.StageSolver {
		return StepPlan{Stage: selfplay.StageSolver, Train: QSSolver, Reference: Snapshot(QSSolver),
			Frozen: []string{Snapshot(QSSolver)}}
	}
	return StepPlan{Stage: selfplay.StageQuestioner, Train: QSQuestioner, Reference: Snapshot(QSQuestioner)}
}

// imagesForStep walks the pool in a fresh seeded order each epoch, so a step's images depend
// only on (seed, step): a resumed run plays what the uninterrupted run played.
func (g *QSGame) imagesForStep(step int) []selfplay.QSImage {
	salt := func(epoch int) uint64 { return uint64(epoch) ^ 0x9e3779b97f4a7c15 }
	return epochPick(g.images, g.seed, salt, step, g.perStep)
}

func (g *QSGame) Play(ctx context.Context, step int, policies map[string]selfplay.Policy) (*StepResult, error) {
	need := func(name string) (selfplay.Policy, error) {
		p, ok := policies[name]
		if !ok || p == nil {
			return nil, fmt.Errorf("qs game: %s stage needs policy %q", g.st.Stage, name)
		}
		return p, nil
	}
	questioner, err := need(QSQuestioner)
	if err != nil {
		return nil, err
	}
	solver, err := need(QSSolver)
	if err != nil {
		return nil, err
	}
	images := g.imagesForStep(step)
	var played *selfplay.QSStep
	if g.st.Stage == selfplay.StageSolver {
		previous, err := need(Snapshot(QSSolver))
		if err != nil {
			return nil, err
		}
		played, err = g.engine.PlaySolver(ctx, questioner, previous, solver, images, step)
		if err != nil {
			return nil, err
		}
	} else {
		played, err = g.engine.PlayQuestioner(ctx, questioner, solver, images, step)
		if err != nil {
			return nil, err
		}
	}
	return g.result(played), nil
}

func (g *QSGame) result(played *selfplay.QSStep) *StepResult {
	res := &StepResult{RolloutTokens: played.Rollout.Tokens}
	for _, grp := range played.Groups {
		for i, c := range grp.Completions {
			res.Samples = append(res.Samples, Sample{Group: grp.ID, Request: grp.Request, Completion: c, Advantage: grp.Advantages[i]})
		}
	}
	sum := played.Summary
	sum.Iteration = g.st.Iteration
	for _, r := range played.Records {
		r.Iteration = g.st.Iteration
		res.Transcripts = append(res.Transcripts, r)
	}
	res.Transcripts = append(res.Transcripts, sum)
	m := &res.Metrics
	m.Step, m.Phase = played.Step, played.Stage
	m.RewardMean, m.RewardStd, m.FracZeroStd = sum.RewardMean, sum.RewardStd, sum.FracZeroStd
	m.DecisionAccuracy, m.AbstainRate = sum.SolverAccuracy, sum.AbstainRate
	if sum.Questions > 0 {
		m.InvalidRate = 1 - sum.ValidRate
	}
	return res
}

// EndStep counts the step and moves to the next stage when this one has had its steps.
func (g *QSGame) EndStep(step int, _ *StepResult) bool {
	g.st.StepsInStage++
	if g.st.StepsInStage < g.sched.stageSteps(g.st.Stage) {
		return false
	}
	if g.st.Stage == selfplay.StageQuestioner {
		g.st.Stage = selfplay.StageSolver
	} else {
		g.st.Stage = selfplay.StageQuestioner
		g.st.Iteration++
	}
	g.st.StepsInStage = 0
	g.st.Switches = append(g.st.Switches, step+1)
	return true
}

func (g *QSGame) State() ([]byte, error) {
	st := g.st
	sched := g.sched
	st.Schedule = &sched
	return json.Marshal(st)
}

func (g *QSGame) Restore(b []byte) error {
	var st qsGameState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("qs game state: %w", err)
	}
	sched := g.sched
	if st.Schedule != nil {
		if err := st.Schedule.Validate(); err != nil {
			return fmt.Errorf("qs game state: %w", err)
		}
		sched = *st.Schedule
	}
	switch {
	case st.Stage != selfplay.StageQuestioner && st.Stage != selfplay.StageSolver:
		return fmt.Errorf("qs game state: stage %q, want %s or %s", st.Stage, selfplay.StageQuestioner, selfplay.StageSolver)
	case st.Iteration < 1:
		return fmt.Errorf("qs game state: iteration %d, want >= 1", st.Iteration)
	case st.StepsInStage < 0 || st.StepsInStage >= sched.stageSteps(st.Stage):
		return fmt.Errorf("qs game state: %d steps into a %s stage of %d steps", st.StepsInStage, st.Stage, sched.stageSteps(st.Stage))
	}
	st.Schedule = nil
	g.st, g.sched = st, sched
	return nil
}

var _ Game = (*QSGame)(nil)

// maxTokens is the longest completion the game samples (sizes llama.cpp's context and the
// seq-mean-token-sum-norm loss).
func (c QSConfig) maxTokens() int { return max(c.QuestionTokens, c.AnswerTokens) }
