package train

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/ollama/ollama/fs/ggml"

	"github.com/vzlocal/vzlocal/lora/cuda"

	"github.com/rs/zerolog"

	"github.com/vzlocal/vzlocal/data"
	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/lora"
	"github.com/vzlocal/vzlocal/selfplay"
)

// Run is an opened training run: its trainer and what it loaded.
type Run struct {
	*Trainer
	Model   *llm.Model
	Engine  lora.Engine
	Train   []*data.Pair // pairs the games are played on
	HeldOut []*data.Pair // pairs kept for evaluation
}

// Close frees the models.
func (r *Run) Close() error {
	if c, ok := r.Engine.(io.Closer); ok {
		c.Close()
	}
	return r.Model.Close()
}

// Open loads everything a run needs from its config: the pairs (split into training and held-out
// by a seeded hash of the pair id), the rollout engine, the gradient engine, the game and the
// trainer (resuming runDir's newest checkpoint when resume is set).
func Open(cfg Config, runDir string, resume bool, log zerolog.Logger) (*Run, error) {
	if cfg.Model == "" || cfg.MMProj == "" {
		return nil, fmt.Errorf("train: --model and --mmproj are required")
	}
	if cfg.Steps < 1 || cfg.GamesPerStep < 1 {
		return nil, fmt.Errorf("train: --steps %d and --games-per-step %d must be >= 1", cfg.Steps, cfg.GamesPerStep)
	}
	if cfg.LoRA.Rank < 1 {
		return nil, fmt.Errorf("train: --lora-rank %d: want >= 1", cfg.LoRA.Rank)
	}
	threads := cfg.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	pairs, err := loadPairs(cfg, runDir, threads, log)
	if err != nil {
		return nil, err
	}
	r := &Run{}
	for _, p := range pairs {
		if data.HeldOut(p.ID, cfg.Seed, cfg.HeldOut) {
			r.HeldOut = append(r.HeldOut, p)
		} else {
			r.Train = append(r.Train, p)
		}
	}
	if len(r.Train) == 0 {
		return nil, fmt.Errorf("train: all %d pairs are held out (--held-out %v): nothing to train on", len(pairs), cfg.HeldOut)
	}
	engine, err := openEngine(cfg.Engine, cfg.CUDAAttention, cfg.CUDAKeepLayers, cfg.Model, threads, log)
	if err != nil {
		return nil, err
	}
	maxTokens, parallel := max(cfg.Spy.ClueMaxTokens, cfg.Spy.DecisionMaxTokens), max(cfg.Spy.ObserverSamples, 1)
	if cfg.Game == "qs" {
		maxTokens = cfg.QS.maxTokens()
		parallel = max(cfg.QS.Questions, cfg.QS.SolverVotes, cfg.QS.LabelVotes, cfg.QS.SolverSamples, 1)
	}
	model, err := llm.Load(cfg.Model, cfg.MMProj, llm.Options{
		Threads: threads, Seed: uint64(cfg.Seed),
		ContextSize: max(4096, 1024+parallel*maxTokens),
		Parallel:    parallel,
	})
	if err != nil {
		return nil, err
	}
	r.Model, r.Engine = model, engine
	game, err := newGame(cfg, runDir, r.Train)
	if err != nil {
		model.Close()
		return nil, err
	}
	t, err := New(Setup{Config: cfg, RunDir: runDir, Game: game, Model: model, Engine: engine, Resume: resume, Log: log})
	if err != nil {
		model.Close()
		return nil, err
	}
	r.Trainer = t
	return r, nil
}

func loadPairs(cfg Config, runDir string, threads int, log zerolog.Logger) ([]*data.Pair, error) {
	switch {
	case cfg.Data == "clevr":
		dir := filepath.Join(runDir, "data")
		rep, err := data.GenerateCLEVR(dir, data.CLEVROptions{N: cfg.DataN, Seed: cfg.Seed, Workers: threads})
		if err != nil {
			return nil, fmt.Errorf("train: --data clevr: %w", err)
		}
		log.Info().Str("dir", dir).Int("pairs", cfg.DataN).Interface("report", rep).Msg("CLEVR pairs ready")
		return data.ReadDir(dir)
	case cfg.Images != "":
		return selfplay.LoadSpyPairs(cfg.Images, runDir, cfg.Seed)
	default:
		return nil, fmt.Errorf("train: give --images DIR or --data clevr")
	}
}

func newGame(cfg Config, runDir string, pairs []*data.Pair) (Game, error) {
	switch cfg.Game {
	case "spy", "":
		prompts, err := selfplay.LoadSpyPrompts(cfg.Spy.Prompts)
		if err != nil {
			return nil, err
		}
		eng, err := selfplay.NewSpyEngine(spySettings(cfg, runDir), prompts)
		if err != nil {
			return nil, err
		}
		return NewSpyGame(eng, pairs, cfg.GamesPerStep, cfg.Seed, cfg.Switch, cfg.Spy.TrainObserverInClue)
	case "qs":
		return NewQSGameFromConfig(cfg.QS, cfg.Seed, selfplay.QSImagesOfPairs(pairs), cfg.GamesPerStep, cfg.Steps)
	default:
		return nil, fmt.Errorf("train: --game %q is not available", cfg.Game)
	}
}

func spySettings(cfg Config, runDir string) selfplay.SpySettings {
	s := selfplay.DefaultSpySettings()
	c := cfg.Spy
	s.Players, s.Rounds, s.Decision, s.ObserverSamples = c.Players, c.Rounds, c.Decision, c.ObserverSamples
	s.SpyImage, s.DecisionReward, s.Beta, s.Lambda, s.Alpha = c.SpyImage, c.DecisionReward, c.Beta, c.Lambda, c.RAEAlpha
	s.Clue = selfplay.StageSampling{Temperature: c.Temperature, MaxTokens: c.ClueMaxTokens}
	s.Decide = selfplay.StageSampling{Temperature: c.Temperature, MaxTokens: c.DecisionMaxTokens}
	s.AdvEps = cfg.Loss.AdvEps
	s.Seed = cfg.Seed
	s.BlankDir = filepath.Join(runDir, "blank")
	return s
}

// openEngine picks the gradient engine: --engine cuda needs the CUDA library and a GPU, auto uses
// them when present and says why not otherwise, cpu is the float32 reference.
func openEngine(kind, attention string, keepLayers int, model string, threads int, log zerolog.Logger) (lora.Engine, error) {
	if keepLayers < -1 {
		return nil, fmt.Errorf("train: --cuda-keep-layers %d: want -1 (as many as fit) or >= 0", keepLayers)
	}
	switch kind {
	case "auto", "cuda":
		attn, err := cuda.ParseAttention(attention)
		if err != nil {
			return nil, fmt.Errorf("train: --cuda-attention: %w", err)
		}
		ok, why := cuda.Available()
		if ok {
			e, err := cuda.OpenFile(model, cuda.Options{GGUF: model, Attention: attn, KeepLayers: keepLayers})
			if err == nil {
				log.Info().Str("engine", "cuda").Str("device", e.Device().String()).Msg("gradient engine")
				return e, nil
			}
			if kind == "cuda" {
				return nil, fmt.Errorf("train: --engine cuda: %w", err)
			}
			log.Warn().Err(err).Msg("the CUDA gradient engine could not start; using the CPU engine")
		} else if kind == "cuda" {
			return nil, fmt.Errorf("train: --engine cuda: %s (build it with make cuda on a machine with a GPU)", why)
		} else {
			log.Info().Str("cuda", why).Msg("no CUDA gradient engine here")
		}
	case "cpu", "":
	default:
		return nil, fmt.Errorf("train: --engine %q: want auto, cpu or cuda", kind)
	}
	weights, err := float32Bytes(model)
	if err != nil {
		return nil, fmt.Errorf("train: gradient engine: %w", err)
	}
	budget := int64(0)
	if avail := memAvailable(); avail > 0 {
		if weights > avail*9/10 {
			return nil, fmt.Errorf("train: the CPU gradient engine keeps the base model in float32: %s needs about %.1f GiB "+
				"and %.1f GiB of memory is available; use a smaller model, or --engine cuda on a machine with a GPU",
				model, float64(weights)/(1<<30), float64(avail)/(1<<30))
		}
		// Half of what is left after the weights: a batch whose activations would not fit in it
		// is computed with per-layer recomputation instead.
		budget = (avail - weights) / 2
	}
	e, err := lora.LoadCPU(model, lora.Options{Threads: threads, MemoryBudget: budget})
	if err != nil {
		return nil, fmt.Errorf("train: gradient engine: %w", err)
	}
	log.Info().Str("engine", "cpu").Int("threads", threads).Msg("gradient engine")
	return e, nil
}

// float32Bytes is the memory the CPU engine needs for the base weights: every tensor of the GGUF
// dequantized to float32 (read from the header alone).
func float32Bytes(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	g, err := ggml.Decode(f, 0)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	var n int64
	for _, t := range g.Tensors().Items() {
		n += int64(t.Elements()) * 4
	}
	return n, nil
}
