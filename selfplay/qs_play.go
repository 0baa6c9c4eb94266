package selfplay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vzlocal/vzlocal/data"
)

// QSPlayConfig is one `vzlocal play --game qs` session: both stages on a few images, no training.
type QSPlayConfig struct {
	Settings QSSettings
	Prompts  *QSPrompts
	Images   []QSImage
	Count    int // images to play; drawn in a seeded order, cycling when there are fewer
	Batch    int // images per step (one Complete call per turn for the whole batch)
	OutDir   string
	Out      io.Writer // live transcript (nil: none)
	Color    bool
}

// QSPlayResult is what a session leaves behind.
type QSPlayResult struct {
	Steps []*QSStep // per batch: the Questioner step, then the Solver step
	File  string    // games.jsonl
	// Questioner and Solver summarize each stage over the whole session.
	Questioner, Solver QSSummary
}

// RunQSPlay plays cfg.Count images in batches: each batch plays a Questioner step (questioner
// asks, solver votes) and a Solver step (questioner asks, solver labels and answers: without
// training the previous and the current Solver are the same). games.jsonl is rewritten
// atomically after every batch, so an interrupted session keeps its finished batches.
func RunQSPlay(ctx context.Context, cfg QSPlayConfig, questioner, solver Policy) (*QSPlayResult, error) {
	if cfg.Count < 1 {
		return nil, fmt.Errorf("play: --games must be at least 1, got %d", cfg.Count)
	}
	if len(cfg.Images) == 0 {
		return nil, errors.New("play: no images")
	}
	if cfg.Batch < 1 {
		cfg.Batch = 1
	}
	eng, err := NewQSEngine(cfg.Settings, cfg.Prompts)
	if err != nil {
		return nil, err
	}
	var printer *QSPrinter
	if cfg.Out != nil {
		printer = &QSPrinter{W: cfg.Out, Color: cfg.Color}
		eng.OnRecord = printer.Record
	}
	order := rand.New(rand.NewPCG(uint64(cfg.Settings.Seed), 0x95)).Perm(len(cfg.Images))
	res := &QSPlayResult{File: filepath.Join(cfg.OutDir, QSGamesFile)}
	var lines []any
	for b, first := 0, 0; first < cfg.Count; b, first = b+1, first+cfg.Batch {
		imgs := make([]QSImage, min(cfg.Batch, cfg.Count-first))
		for i := range imgs {
			imgs[i] = cfg.Images[order[(first+i)%len(order)]]
		}
		for _, stage := range []string{StageQuestioner, StageSolver} {
			var st *QSStep
			if stage == StageQuestioner {
				st, err = eng.PlayQuestioner(ctx, questioner, solver, imgs, b)
			} else {
				st, err = eng.PlaySolver(ctx, questioner, solver, solver, imgs, b)
			}
			if err != nil {
				return res, fmt.Errorf("images %d-%d: %w", first, first+len(imgs)-1, err)
			}
			if printer != nil {
				printer.Summary(st.Summary)
			}
			res.Steps = append(res.Steps, st)
			for _, r := range st.Records {
				lines = append(lines, r)
			}
			lines = append(lines, st.Summary)
		}
		if err := WriteQSRecords(res.File, lines); err != nil {
			return res, err
		}
	}
	res.Questioner, res.Solver = summarizeQSSession(res.Steps, StageQuestioner), summarizeQSSession(res.Steps, StageSolver)
	return res, nil
}

// summarizeQSSession summarizes one stage over all steps of a session.
func summarizeQSSession(steps []*QSStep, stage string) QSSummary {
	all := &QSStep{Stage: stage, Step: -1}
	images := 0
	for _, s := range steps {
		if s.Stage != stage {
			continue
		}
		all.Records = append(all.Records, s.Records...)
		all.Groups = append(all.Groups, s.Groups...)
		images += s.Summary.Images
	}
	return summarizeQS(all, images)
}

// LoadQSImages reads the unlabeled pool of dir: the original images of a pair folder
// (index.jsonl or pair .json files; their items let the scripted policy play), or the plain
// images (.png, .jpg, .jpeg, .webp) of any other folder, in name order.
func LoadQSImages(dir string) ([]QSImage, error) {
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
	var jsons int
	var plain []string
	for _, e := range entries {
		switch ext := strings.ToLower(filepath.Ext(e.Name())); {
		case e.IsDir():
		case e.Name() == data.IndexFile || ext == ".json":
			jsons++
		case spyImageExts[ext]:
			plain = append(plain, e.Name())
		}
	}
	if jsons > 0 {
		pairs, err := data.ReadDir(dir)
		if err != nil {
			return nil, err
		}
		if len(pairs) == 0 {
			return nil, fmt.Errorf("--images %s: no usable pairs", dir)
		}
		return QSImagesOfPairs(pairs), nil
	}
	if len(plain) == 0 {
		return nil, fmt.Errorf("--images %s: no pairs (index.jsonl or pair .json files) and no images (.png, .jpg, .webp) in the folder", dir)
	}
	sort.Strings(plain)
	out := make([]QSImage, len(plain))
	for i, name := range plain {
		out[i] = QSImage{ID: strings.TrimSuffix(name, filepath.Ext(name)), Path: filepath.Join(dir, name)}
	}
	return out, nil
}
