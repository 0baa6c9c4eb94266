package train

import (
	"context"

	"github.com/vzlocal/vzlocal/selfplay"
)

// Game is a self-play game the trainer learns from. The spy game (Vision-Zero) and the
// questioner/solver game (V-Zero) implement it; the training loop is the same for both: ask the
// game for a plan, let it play with one Policy per adapter, train the planned adapter on the
// samples it returns, and tell it the step is over.
type Game interface {
	// Adapters names the LoRA adapters the game trains, e.g. ["policy"] or ["questioner", "solver"].
	// All share one base model.
	Adapters() []string
	// Plan says what the next step does.
	Plan() StepPlan
	// Play plays one step's games. policies has a Policy for every name in Adapters() and for
	// every snapshot the plan asked for (Plan().Frozen), each playing that adapter over the one
	// loaded base model. step numbers the optimizer step (0-based); game ids derived from it keep
	// a resumed run identical to an uninterrupted one.
	Play(ctx context.Context, step int, policies map[string]selfplay.Policy) (*StepResult, error)
	// EndStep closes a step whose update was applied (or skipped): the game moves its own state
	// (baselines, stage switcher, iteration) and reports whether the next step starts a new stage.
	EndStep(step int, res *StepResult) (switched bool)
	// State and Restore are the game's checkpoint state (JSON): RAE baselines, switcher, stage.
	State() ([]byte, error)
	Restore(state []byte) error
}

// StepPlan is what one optimizer step does.
type StepPlan struct {
	Stage string // "decision"/"clue" or "questioner"/"solver": logged and plotted
	Train string // the adapter the step updates (one of Adapters())
	// Reference is the KL reference: "" for the base model without adapter, or a snapshot name.
	Reference string
	// Frozen lists snapshots the step plays with: Snapshot(name) is the adapter `name` as it was
	// when the current stage began (the V-Zero solver stage's "previous solver", a stage's KL
	// reference). The trainer takes them at every stage change.
	Frozen []string
}

// Snapshot names the frozen copy of an adapter taken when the current stage began.
func Snapshot(adapter string) string { return adapter + "@stage-start" }

// StepResult is what a game hands the trainer after playing a step.
type StepResult struct {
	// Samples to train Plan().Train on, with their advantages. Samples with the same Group share
	// a prompt (a GRPO group): the gradient engine computes the prompt once.
	Samples []Sample
	// Metrics carries the game's share of the step's metrics (rewards, accuracy, abstain rate,
	// baselines ...); the trainer adds the optimisation and timing fields.
	Metrics selfplay.StepMetrics
	// Transcripts are appended to RUNDIR/games.jsonl, one JSON value per element.
	Transcripts []any
	// RolloutTokens counts the tokens sampled this step (for tokens/s).
	RolloutTokens int
}

// Sample is one completion to train on.
type Sample struct {
	Group      string
	Request    selfplay.Request // rebuilds the exact prompt (system, user text, image)
	Completion selfplay.Completion
	Advantage  float64
}
