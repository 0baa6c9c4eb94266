package selfplay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog/log"

	"github.com/vzlocal/vzlocal/data"
)

// SpyPlayConfig is one `vzlocal play` session: games to watch, no training.
type SpyPlayConfig struct {
	Settings SpySettings
	Prompts  *SpyPrompts
	Pairs    []*data.Pair
	Games    int // games to play; pairs are drawn in a seeded order, cycling when there are fewer
	Batch    int // games played together (one Complete call per turn for the whole batch)
	OutDir   string
	HTML     string // optional report page
	Title    string
	Out      io.Writer // live transcript (nil: none)
	Color    bool
}

// SpyPlayResult is what a session leaves behind.
type SpyPlayResult struct {
	Games   []*SpyGame
	Summary SpySummary
	Rollout Rollout
	File    string // games.jsonl
}

// RunSpyPlay plays cfg.Games games with pol, showing them as they go, and writes games.jsonl
// (rewritten atomically after every batch, so an interrupted session keeps its finished games)
// and the optional HTML page. Rewards use one RAE state for the whole session, as training would.
func RunSpyPlay(ctx context.Context, cfg SpyPlayConfig, pol Policy) (*SpyPlayResult, error) {
	if cfg.Games < 1 {
		return nil, fmt.Errorf("play: --games must be at least 1, got %d", cfg.Games)
	}
	if len(cfg.Pairs) == 0 {
		return nil, errors.New("play: no usable pairs")
	}
	if cfg.Batch < 1 {
		cfg.Batch = 1
	}
	eng, err := NewSpyEngine(cfg.Settings, cfg.Prompts)
	if err != nil {
		return nil, err
	}
	var printer *SpyPrinter
	if cfg.Out != nil {
		printer = &SpyPrinter{W: cfg.Out, Color: cfg.Color}
		eng.OnTurn = printer.Turn
	}
	order := rand.New(rand.NewPCG(uint64(cfg.Settings.Seed), 0x5e1f)).Perm(len(cfg.Pairs))
	res := &SpyPlayResult{File: filepath.Join(cfg.OutDir, SpyGamesFile)}
	rae := NewSpyRAE(cfg.Settings.Alpha)
	for first := 0; first < cfg.Games; first += cfg.Batch {
		n := min(cfg.Batch, cfg.Games-first)
		pairs := make([]*data.Pair, n)
		for i := range pairs {
			pairs[i] = cfg.Pairs[order[(first+i)%len(order)]]
		}
		start := time.Now()
		games, stats, err := eng.Play(ctx, pol, pairs, first)
		res.Rollout.Add(stats)
		if err != nil {
			return res, fmt.Errorf("games %d-%d: %w", first, first+n-1, err)
		}
		for _, g := range games {
			if err := g.Score(cfg.Settings, rae); err != nil {
				return res, err
			}
			if printer != nil {
				printer.Result(g)
			}
		}
		res.Games = append(res.Games, games...)
		if err := WriteSpyGames(res.File, res.Games); err != nil {
			return res, err
		}
		log.Debug().Int("games", len(res.Games)).Dur("batch", time.Since(start)).Int("tokens", stats.Tokens).Msg("batch played")
	}
	res.Summary = SummarizeSpyGames(res.Games, res.Rollout)
	if cfg.HTML != "" {
		title := cfg.Title
		if title == "" {
			title = "vzlocal play: Who is the Spy"
		}
		if err := WriteSpyReport(cfg.HTML, title, res.Games, res.Summary); err != nil {
			return res, err
		}
	}
	return res, nil
}

// spyImageExts are the plain image files a folder of photos may hold.
var spyImageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true, ".webp": true}

// LoadSpyPairs reads the pairs of dir: a pair folder (index.jsonl or pair *.json files) as is, or a
// folder of plain images turned into pairs with automatic edits under workDir/pairs.
func LoadSpyPairs(dir, workDir string, seed int64) ([]*data.Pair, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("--images %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("--images %s: not a folder", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--images %s: %w", dir, err)
	}
	var jsons, images int
	for _, e := range entries {
		switch ext := strings.ToLower(filepath.Ext(e.Name())); {
		case e.IsDir():
		case e.Name() == data.IndexFile || ext == ".json":
			jsons++
		case spyImageExts[ext]:
			images++
		}
	}
	var pairs []*data.Pair
	switch {
	case jsons > 0:
		if pairs, err = data.ReadDir(dir); err != nil {
			return nil, err
		}
	case images > 0:
		out := filepath.Join(workDir, "pairs")
		log.Info().Str("images", dir).Str("pairs", out).Int("files", images).Msg("not a pair folder: making pairs from the images with automatic edits")
		var rep data.Report
		pairs, rep, err = data.PairsFromImages(dir, out, data.EditOptions{Seed: seed})
		if err != nil {
			return nil, fmt.Errorf("--images %s: %w", dir, err)
		}
		for _, s := range rep.Skipped {
			log.Warn().Str("file", s.Path).Err(s.Err).Msg("image skipped")
		}
	default:
		return nil, fmt.Errorf("--images %s: no pairs (index.jsonl or pair .json files) and no images (.png, .jpg, .webp) in the folder", dir)
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("--images %s: no usable pairs", dir)
	}
	return pairs, nil
}
