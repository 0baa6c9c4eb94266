package selfplay

// StepMetrics is one line of RUNDIR/metrics.jsonl, written after every optimizer step (the list of
// training.md). Fields that a step did not measure are zero; Eval* fields are set only on steps that
// ran a scheduled evaluation.
type StepMetrics struct {
	Step  int    `json:"step"`
	Phase string `json:"phase"` // "clue" or "decision" (spy game); "questioner" or "solver" (qs game)
	Time  string `json:"time"`  // RFC 3339
	// PhaseSwitched is true on the first step of a new phase.
	PhaseSwitched bool `json:"phase_switched,omitempty"`

	RewardMean  float64 `json:"reward_mean"`
	RewardStd   float64 `json:"reward_std"`
	FracZeroStd float64 `json:"frac_zero_std"`

	DecisionAccuracy float64 `json:"decision_accuracy"`
	AbstainRate      float64 `json:"abstain_rate"`
	InvalidRate      float64 `json:"invalid_rate"`
	SpyWinRate       float64 `json:"spy_win_rate"`
	BaselineSpy      float64 `json:"baseline_spy"`
	BaselineCiv      float64 `json:"baseline_civ"`
	AccEMA           float64 `json:"acc_ema"`
	AbstainEMA       float64 `json:"abstain_ema"`

	KL              float64 `json:"kl"`
	LogRatioMean    float64 `json:"log_ratio_abs_mean"` // |log pi_theta - log pi_b| per token
	LogRatioP99     float64 `json:"log_ratio_abs_p99"`
	SeqLogRatioMean float64 `json:"seq_log_ratio_mean"` // before truncation
	ClippedFrac     float64 `json:"clipped_frac"`
	GradNorm        float64 `json:"grad_norm"`
	LR              float64 `json:"lr"`
	Loss            float64 `json:"loss"`
	Skipped         bool    `json:"skipped,omitempty"` // non-finite loss or gradient: step not applied

	CompletionLenMean float64 `json:"completion_len_mean"`
	CompletionLenMax  int     `json:"completion_len_max"`
	RolloutTokPerSec  float64 `json:"rollout_tok_per_s"`
	TrainTokPerSec    float64 `json:"train_tok_per_s"`
	RolloutSeconds    float64 `json:"rollout_s"`
	ScoreSeconds      float64 `json:"score_s"` // log-prob passes outside the backward: the KL reference, and the policy's with an engine that cannot score inside its backward (CUDA; MIS's first update)
	TrainSeconds      float64 `json:"train_s"`
	OptimSeconds      float64 `json:"optim_s"`
	SwapSeconds       float64 `json:"swap_s"`
	PeakMemBytes      int64   `json:"peak_mem_bytes"`

	// Scheduled evaluation against the frozen base (issue: eval); present when run this step.
	EvalWinRate *float64 `json:"eval_win_rate,omitempty"`
	EvalWinLow  *float64 `json:"eval_win_low,omitempty"` // Wilson 95% interval
	EvalWinHigh *float64 `json:"eval_win_high,omitempty"`
	EvalGames   int      `json:"eval_games,omitempty"`
}
