package train

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Config is every setting of a training run. It is the `vzlocal train` flag set (kong tags), the
// shape of a --config file, and RUNDIR/config.json; a resumed run compares its config with the
// saved one field by field.
type Config struct {
	Model  string `help:"Text model GGUF (the base)." group:"model"`
	MMProj string `name:"mmproj" help:"Vision projector GGUF (mmproj) that fits the model." group:"model"`
	Engine string `help:"Gradient engine: auto, cpu or cuda." default:"auto" enum:"auto,cpu,cuda" group:"model"`
	// CUDAAttention picks the CUDA engine's attention kernels (docs/cuda.md); flash needs head_dim 64 or 128.
	CUDAAttention string `name:"cuda-attention" help:"CUDA engine attention: auto, gemm or flash." default:"auto" enum:"auto,gemm,flash" group:"model"`
	// CUDAKeepLayers is cuda.Options.KeepLayers: 0 recomputes every block's activations in the
	// backward; -1 keeps as many as fit in what is free when the backward starts (20-25% faster at
	// 7B); the trainer releases that memory after each update, before the next rollouts.
	CUDAKeepLayers int `name:"cuda-keep-layers" help:"CUDA engine: blocks whose activations are kept for the backward instead of recomputed (-1: as many as fit in the GPU memory free at each update, leaving max(1 GiB, 1/16) free, given back to llama.cpp's rollouts after the update; 0: none, the least memory)." default:"-1" group:"model"`

	Images  string  `help:"Pair folder (vzlocal data format) or a folder of plain images." group:"data"`
	Data    string  `help:"Generate pairs instead of --images: clevr." enum:",clevr" default:"" group:"data"`
	DataN   int     `name:"data-n" help:"Pairs to generate with --data." default:"200" group:"data"`
	HeldOut float64 `help:"Fraction of pairs held out for evaluation (seeded hash of the pair id)." default:"0.1" group:"data"`
	Game    string  `help:"Game: spy (Vision-Zero) or qs (V-Zero questioner/solver)." default:"spy" enum:"spy,qs" group:"data"`
	Seed    int64   `help:"Seed of everything random in the run." default:"1" group:"data"`

	Steps           int `help:"Optimizer steps." default:"100" group:"run"`
	GamesPerStep    int `help:"Games played per optimizer step." default:"8" group:"run"`
	CheckpointEvery int `help:"Checkpoint every K steps (and at exit)." default:"10" group:"run"`
	KeepCheckpoints int `help:"Checkpoints kept (0 keeps all)." default:"3" group:"run"`
	Threads         int `help:"CPU threads for llama.cpp and BLAS (0 = all cores)." default:"0" group:"run"`
	EvalEvery       int `help:"Evaluate against the frozen base every E steps (0 = off)." default:"0" group:"run"`
	EvalGames       int `help:"Games per scheduled evaluation." default:"20" group:"run"`

	Spy    SpyConfig    `embed:"" prefix:"spy-" group:"spy game"`
	QS     QSConfig     `embed:"" prefix:"qs-" group:"questioner/solver game"`
	Switch SwitchConfig `embed:"" prefix:"switch-" group:"stage switching"`
	LoRA   LoRAConfig   `embed:"" prefix:"lora-" group:"adapter"`
	Optim  OptimConfig  `embed:"" group:"optimizer"`
	Loss   LossConfig   `embed:"" group:"objective"`
}

// SpyConfig is the Vision-Zero game (games.md 1.1-1.2).
type SpyConfig struct {
	Players             int     `help:"Players per game." default:"4"`
	Rounds              int     `help:"Clue rounds." default:"2"`
	Decision            string  `help:"Decision stage: observer (one prompt sampled G times) or vote (each civilian votes)." default:"observer" enum:"observer,vote"`
	ObserverSamples     int     `help:"G: observer samples per game." default:"8"`
	SpyImage            string  `name:"image" help:"What the spy sees: modified or blank." default:"modified" enum:"modified,blank"`
	DecisionReward      string  `help:"Decision reward: paper (accuracy only) or code (format + accuracy + bonus)." default:"code" enum:"paper,code"`
	Beta                float64 `help:"Clue reward weight of the spy's exposure (beta)." default:"0.1"`
	Lambda              float64 `help:"Clue reward weight of a civilian's own suspicion (lambda)." default:"0.1"`
	RAEAlpha            float64 `name:"rae-alpha" help:"EMA factor of the role baselines." default:"0.9"`
	TrainObserverInClue bool    `help:"Also train observer samples in clue steps (a quirk of the official code)." default:"false"`
	Temperature         float64 `help:"Sampling temperature." default:"0.8"`
	TopP                float64 `help:"Top-p (1 = off; the behaviour log-prob is then the renormalised one)." default:"1"`
	TopK                int     `help:"Top-k (0 = off)." default:"0"`
	ClueMaxTokens       int     `help:"Max new tokens of a clue turn." default:"256"`
	DecisionMaxTokens   int     `help:"Max new tokens of an observer or vote turn." default:"256"`
	Prompts             string  `help:"Folder of prompt templates overriding the built-in ones."`
}

// LoRAConfig is the trained adapter.
type LoRAConfig struct {
	Rank    int      `help:"LoRA rank." default:"16"`
	Alpha   float64  `help:"LoRA alpha (scale alpha/rank)." default:"32"`
	Targets []string `help:"Adapted weights of the language model." default:"attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down"`
}

// OptimConfig is AdamW and its schedule.
type OptimConfig struct {
	LR          float64 `name:"lr" help:"Peak learning rate (LoRA wants about 10x a full fine-tune's)." default:"1e-4"`
	Schedule    string  `help:"Learning-rate schedule." default:"cosine" enum:"constant,linear,cosine"`
	Warmup      float64 `help:"Warm-up as a fraction of the steps." default:"0.1"`
	WeightDecay float64 `help:"AdamW decoupled weight decay." default:"0"`
	Beta1       float64 `name:"beta1" help:"AdamW beta1." default:"0.9"`
	Beta2       float64 `name:"beta2" help:"AdamW beta2." default:"0.999"`
	Eps         float64 `help:"AdamW epsilon." default:"1e-8"`
	ClipNorm    float64 `help:"Global gradient-norm clip (0 = off)." default:"1.0"`
}

// LossConfig is the policy-gradient objective of training.md.
type LossConfig struct {
	LossAgg         string  `help:"Loss aggregation." default:"seq-mean-token-mean" enum:"seq-mean-token-mean,token-mean,seq-mean-token-sum-norm"`
	KLBeta          float64 `name:"kl-beta" help:"KL weight to the reference (0 skips the reference pass)." default:"0.04"`
	KLEstimator     string  `name:"kl-estimator" help:"KL estimator." default:"k3" enum:"k1,k3"`
	ClipLow         float64 `help:"PPO clip epsilon below 1." default:"0.2"`
	ClipHigh        float64 `help:"PPO clip epsilon above 1." default:"0.2"`
	UpdatesPerBatch int     `help:"Optimizer updates per batch of games (ratio clipping matters only when > 1)." default:"1"`
	IS              string  `name:"is" help:"Importance sampling against the rollout engine's behaviour log-probs: none, tis (truncate), mis (mask)." default:"tis" enum:"none,tis,mis"`
	ISLevel         string  `name:"is-level" help:"Importance ratio per token or per sequence." default:"token" enum:"token,sequence"`
	ISCap           float64 `name:"is-cap" help:"TIS cap C, or MIS upper bound." default:"2"`
	ISMin           float64 `name:"is-min" help:"MIS lower bound." default:"0.5"`
	AdvEps          float64 `help:"Epsilon added to the std of the spy game's decision advantages (the qs game uses games.md's 1e-6)." default:"1e-8"`
}

// Diff lists the settings that differ between two configs ("lora.rank: 16 != 8"), for refusing
// an incompatible resume. Fields in ignore (Go field paths like "Steps") may differ.
func Diff(a, b Config, ignore ...string) []string {
	skip := map[string]bool{}
	for _, s := range ignore {
		skip[s] = true
	}
	var out []string
	diffValue("", reflect.ValueOf(a), reflect.ValueOf(b), skip, &out)
	sort.Strings(out)
	return out
}

func diffValue(path string, a, b reflect.Value, skip map[string]bool, out *[]string) {
	if skip[path] {
		return
	}
	if a.Kind() == reflect.Struct {
		for i := 0; i < a.NumField(); i++ {
			name := a.Type().Field(i).Name
			p := name
			if path != "" {
				p = path + "." + name
			}
			diffValue(p, a.Field(i), b.Field(i), skip, out)
		}
		return
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		*out = append(*out, fmt.Sprintf("%s: %v (saved) != %v (now)", strings.ToLower(path), a.Interface(), b.Interface()))
	}
}
