package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/rs/zerolog/log"
	"golang.org/x/term"

	"github.com/vzlocal/vzlocal/llm"
	"github.com/vzlocal/vzlocal/selfplay"
)

// newLlamaPolicy opens the in-process llama.cpp backend on the base model.
func newLlamaPolicy(model, mmproj string, threads int, seed int64) (selfplay.Policy, error) {
	return selfplay.OpenLlamaPolicy(model, mmproj, llm.Options{Threads: threads, Seed: uint64(seed)})
}

// playCmd plays games to watch, no training: "Who is the Spy" (--game spy) or V-Zero's
// Questioner/Solver game (--game qs, play_qs.go).
type playCmd struct {
	Game   string `help:"Game: spy (Who is the Spy, on pairs) or qs (V-Zero questioner/solver, on the pairs' original images or plain images)." default:"spy" enum:"spy,qs"`
	Images string `help:"Folder of pairs (index.jsonl / pair .json files) or of plain images (made into pairs with automatic edits)." required:"" type:"path"`

	Scripted bool   `help:"Play with the scripted reference players (from the pairs' item descriptions)." xor:"backend" required:""`
	Ollama   string `help:"Play with this model of a running Ollama server." xor:"backend" required:"" placeholder:"NAME"`
	Host     string `help:"Ollama server address." default:"http://127.0.0.1:11434"`
	Model    string `help:"GGUF model for the in-process llama.cpp backend (with --mmproj)." xor:"backend" required:"" type:"path" placeholder:"M.gguf"`
	Mmproj   string `help:"GGUF vision projector for --model." type:"path" placeholder:"P.gguf"`
	Threads  int    `help:"CPU threads for --model (0: all cores)."`

	Games   int    `help:"Games to play (--game qs: images to play)." default:"4"`
	Seed    int64  `help:"Seed: spies, pair order, scripted players." default:"1"`
	Batch   int    `help:"Games played together (their turns go to the model as one batch)." default:"4"`
	Out     string `help:"Output folder (games.jsonl)." default:"play-out" type:"path"`
	HTML    string `help:"Also write an HTML page with the images and transcripts." type:"path" name:"html"`
	Prompts string `help:"Folder of prompt templates overriding the built-in ones (spy_system.tmpl, spy_clue.tmpl, spy_observer.tmpl, spy_voter.tmpl; qs_questioner.tmpl, qs_solver.tmpl)." type:"path"`

	Players        int     `help:"Players per game." default:"4"`
	Rounds         int     `help:"Clue rounds." default:"2"`
	Decision       string  `help:"Decision stage: observer (one judge sampled --samples times) or vote (each civilian votes)." default:"observer" enum:"observer,vote"`
	SpyImage       string  `help:"What the spy sees: the modified image or a blank one." default:"modified" enum:"modified,blank"`
	Samples        int     `help:"Observer samples per game (G)." default:"8"`
	VoteSamples    int     `help:"Samples of each civilian's vote in --decision vote." default:"1"`
	DecisionReward string  `help:"Decision reward: code (official constants) or paper (accuracy only)." default:"code" enum:"code,paper"`
	Temperature    float64 `help:"Sampling temperature of every stage." default:"0.8"`
	MaxTokens      int     `help:"Most new tokens per completion." default:"1024"`
	Color          string  `help:"Colour the transcript: auto (on a terminal), always, never." default:"auto" enum:"auto,always,never"`

	QS qsPlayFlags `embed:"" prefix:"qs-" group:"Questioner/Solver game (--game qs)"`
}

func (c *playCmd) Run(kctx *kong.Context) error {
	if err := c.checkGameFlags(kctx); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if c.Game == "qs" {
		return c.runQS(ctx)
	}

	s := selfplay.DefaultSpySettings()
	s.Players, s.Rounds, s.Decision, s.SpyImage = c.Players, c.Rounds, c.Decision, c.SpyImage
	s.ObserverSamples, s.VoteSamples = c.Samples, c.VoteSamples
	s.DecisionReward, s.Seed = c.DecisionReward, c.Seed
	s.Clue = selfplay.StageSampling{Temperature: c.Temperature, MaxTokens: c.MaxTokens}
	s.Decide = s.Clue
	s.BlankDir = filepath.Join(c.Out, "blank") // blank spy images live with the run
	if err := s.Validate(); err != nil {
		return err
	}
	prompts, err := selfplay.LoadSpyPrompts(c.Prompts)
	if err != nil {
		return err
	}
	pairs, err := selfplay.LoadSpyPairs(c.Images, c.Out, c.Seed)
	if err != nil {
		return err
	}
	pol, err := c.policy(ctx)
	if err != nil {
		return err
	}
	if cl, ok := pol.(io.Closer); ok {
		defer cl.Close()
	}
	color := c.Color == "always" || (c.Color == "auto" && term.IsTerminal(int(os.Stdout.Fd())))
	log.Info().Int("pairs", len(pairs)).Int("games", c.Games).Str("decision", s.Decision).Msg("playing Who is the Spy")
	res, err := selfplay.RunSpyPlay(ctx, selfplay.SpyPlayConfig{
		Settings: s, Prompts: prompts, Pairs: pairs, Games: c.Games, Batch: c.Batch,
		OutDir: c.Out, HTML: c.HTML, Out: os.Stdout, Color: color,
	}, pol)
	if res != nil && len(res.Games) > 0 {
		log.Info().Str("file", res.File).Int("games", len(res.Games)).Msg("trajectories written")
	}
	if err != nil {
		return err
	}
	fmt.Println(res.Summary)
	if c.HTML != "" {
		log.Info().Str("file", c.HTML).Msg("report written")
	}
	return nil
}

func (c *playCmd) policy(ctx context.Context) (selfplay.Policy, error) {
	switch {
	case c.Scripted:
		return selfplay.NewScriptedSpyPolicy(c.Seed), nil
	case c.Ollama != "":
		p, err := selfplay.NewOllamaPolicy(ctx, c.Host, c.Ollama, nil)
		if err != nil {
			return nil, err
		}
		p.Seed = c.Seed
		return p, nil
	default:
		if c.Mmproj == "" {
			return nil, errors.New("vzlocal play --model needs --mmproj (the vision projector GGUF)")
		}
		threads := c.Threads
		if threads <= 0 {
			threads = runtime.NumCPU()
		}
		return newLlamaPolicy(c.Model, c.Mmproj, threads, c.Seed)
	}
}

// spyOnlyPlayFlags are the flags of the spy game; --qs-* flags belong to the qs game.
var spyOnlyPlayFlags = map[string]string{
	"players": "", "rounds": "", "decision": "", "spy-image": "", "samples": "", "vote-samples": "",
	"decision-reward": "", "temperature": "--qs-temperature", "max-tokens": "--qs-max-tokens",
}

// checkGameFlags refuses flags given for the other game: they would be ignored without a word.
func (c *playCmd) checkGameFlags(kctx *kong.Context) error {
	if kctx == nil {
		return nil
	}
	for _, p := range kctx.Path { // the flags given (a default is no Path element)
		f := p.Flag
		if f == nil {
			continue
		}
		instead, spyOnly := spyOnlyPlayFlags[f.Name]
		switch {
		case c.Game == "qs" && spyOnly && instead != "":
			return fmt.Errorf("vzlocal play --game qs: --%s is a spy-game setting; use %s", f.Name, instead)
		case c.Game == "qs" && spyOnly:
			return fmt.Errorf("vzlocal play --game qs: --%s is a spy-game setting", f.Name)
		case c.Game != "qs" && strings.HasPrefix(f.Name, "qs-"):
			return fmt.Errorf("vzlocal play: --%s is a setting of --game qs", f.Name)
		}
	}
	return nil
}
