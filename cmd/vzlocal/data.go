package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ollama/ollama/progress"
	"github.com/rs/zerolog/log"
	"golang.org/x/term"

	"github.com/vzlocal/vzlocal/data"
)

// dataCmd makes image pairs; each kind is a subcommand.
type dataCmd struct {
	Clevr  dataClevrCmd  `cmd:"" help:"CLEVR-style 3D scenes; the modified scene changes K objects."`
	Charts dataChartsCmd `cmd:"" help:"Bar, line and pie charts; the modified chart has some values replaced."`
	Pairs  dataPairsCmd  `cmd:"" help:"Pairs from a folder of photos: user pairs (NAME.EXT + NAME.edit.EXT, manifest.jsonl) and automatic edits."`
}

type dataClevrCmd struct {
	N          int    `help:"Number of pairs." default:"1000"`
	Out        string `help:"Output folder." required:"" type:"path"`
	Seed       int64  `help:"Seed: the same seed gives byte-identical pairs." default:"1"`
	Workers    int    `help:"Parallel workers (0: all cores)." default:"0"`
	Width      int    `help:"Image width." default:"320"`
	Height     int    `help:"Image height." default:"240"`
	MinObjects int    `help:"Fewest objects in a scene." default:"4"`
	MaxObjects int    `help:"Most objects in a scene." default:"6"`
	Changes    int    `help:"Objects changed in the modified scene (K)." default:"2"`
	Rule       string `help:"What changes: replace (colour and shape), recolor, add, remove, move." default:"replace" enum:"replace,recolor,add,remove,move"`
	MinVisible int    `help:"Least visible pixels of every object (0: 200 at 480x320, scaled by area)." default:"0"`
}

func (c *dataClevrCmd) Run() error {
	if err := positive(map[string]int{"--width": c.Width, "--height": c.Height, "--min-objects": c.MinObjects,
		"--max-objects": c.MaxObjects, "--changes": c.Changes}); err != nil {
		return err
	}
	prog, stop := newProgress("clevr pairs")
	rep, err := data.GenerateCLEVR(c.Out, data.CLEVROptions{
		N: c.N, Seed: c.Seed, Width: c.Width, Height: c.Height, MinObjects: c.MinObjects,
		MaxObjects: c.MaxObjects, Changes: c.Changes, Rule: c.Rule, MinVisible: c.MinVisible,
		Workers: c.Workers, Progress: prog,
	})
	stop()
	return finish(c.Out, rep, err)
}

type dataChartsCmd struct {
	N          int      `help:"Number of pairs." default:"1000"`
	Out        string   `help:"Output folder." required:"" type:"path"`
	Seed       int64    `help:"Seed: the same seed gives byte-identical pairs." default:"1"`
	Workers    int      `help:"Parallel workers (0: all cores)." default:"0"`
	Width      int      `help:"Image width." default:"480"`
	Height     int      `help:"Image height." default:"360"`
	Types      []string `help:"Chart types, drawn in turn." default:"bar,line,pie"`
	MinChanges int      `help:"Fewest values replaced." default:"1"`
	MaxChanges int      `help:"Most values replaced." default:"2"`
}

func (c *dataChartsCmd) Run() error {
	if err := positive(map[string]int{"--width": c.Width, "--height": c.Height, "--min-changes": c.MinChanges,
		"--max-changes": c.MaxChanges}); err != nil {
		return err
	}
	prog, stop := newProgress("chart pairs")
	rep, err := data.GenerateCharts(c.Out, data.ChartOptions{
		N: c.N, Seed: c.Seed, Width: c.Width, Height: c.Height, Types: c.Types,
		MinChanges: c.MinChanges, MaxChanges: c.MaxChanges, Workers: c.Workers, Progress: prog,
	})
	stop()
	return finish(c.Out, rep, err)
}

type dataPairsCmd struct {
	From          string   `help:"Folder of photos (JPEG, PNG, WebP, GIF)." required:"" type:"existingdir"`
	Out           string   `help:"Output folder." required:"" type:"path"`
	N             int      `help:"Most pairs to make (0: every photo, times --per-image)." default:"0"`
	Seed          int64    `help:"Seed: the same seed gives byte-identical pairs." default:"1"`
	Workers       int      `help:"Parallel workers (0: all cores)." default:"0"`
	Manifest      string   `help:"ImgEdit-style JSONL of user pairs (source, edited, instruction); default FROM/manifest.jsonl." type:"existingfile"`
	Edits         []string `help:"Automatic edits to draw from." default:"recolor,mirror,swap,remove,paste"`
	EditsPerPair  int      `help:"Automatic edits per modified photo." default:"1"`
	PerImage      int      `help:"Pairs made from each single photo." default:"1"`
	MaxSide       int      `help:"Downscale photos whose longer side exceeds this." default:"1024"`
	MinSide       int      `help:"Reject photos whose shorter side is below this." default:"64"`
	SpyImage      string   `help:"The spy's image: modified (the edit) or blank (a gray image)." default:"modified" enum:"modified,blank"`
	DiffThreshold int      `help:"Channel difference above which a user-pair pixel counts as edited." default:"24"`
}

func (c *dataPairsCmd) Run() error {
	if c.N < 0 {
		return fmt.Errorf("--n must be positive (or 0 for every photo), got %d", c.N)
	}
	if err := positive(map[string]int{"--edits-per-pair": c.EditsPerPair, "--per-image": c.PerImage,
		"--max-side": c.MaxSide, "--min-side": c.MinSide, "--diff-threshold": c.DiffThreshold}); err != nil {
		return err
	}
	prog, stop := newProgress("photo pairs")
	_, rep, err := data.PairsFromImages(c.From, c.Out, data.EditOptions{
		Seed: c.Seed, Limits: data.ImageLimits{MinSide: c.MinSide, MaxSide: c.MaxSide}, Edits: c.Edits,
		EditsPerPair: c.EditsPerPair, PairsPerImage: c.PerImage, N: c.N, Manifest: c.Manifest,
		SpyBlank: c.SpyImage == "blank", DiffThreshold: c.DiffThreshold, Workers: c.Workers, Progress: prog,
	})
	stop()
	if err == nil && len(rep.Skipped) > 0 {
		var names []string
		for _, s := range rep.Skipped {
			names = append(names, s.Path)
		}
		log.Warn().Int("skipped", len(rep.Skipped)).Str("files", strings.Join(names, ", ")).Msg("some source files were not usable")
	}
	return finish(c.Out, rep, err)
}

// positive rejects flags set to zero or less: in the library a zero means "the default", which
// must not happen silently to a value the user typed.
func positive(flags map[string]int) error {
	var bad []string
	for name, v := range flags {
		if v <= 0 {
			bad = append(bad, fmt.Sprintf("%s must be positive, got %d", name, v))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

func finish(out string, rep data.Report, err error) error {
	if err != nil {
		return err
	}
	rate := 0.0
	if s := rep.Elapsed.Seconds(); s > 0 {
		rate = float64(rep.Written) / s
	}
	log.Info().Str("out", out).Int("pairs", rep.Total).Int("written", rep.Written).Int("reused", rep.Reused).
		Int("skipped", len(rep.Skipped)).Str("elapsed", rep.Elapsed.Round(time.Millisecond).String()).
		Float64("pairs_per_s", float64(int(rate*10))/10).Msg("pairs ready")
	return nil
}

// newProgress shows a progress bar with an ETA on a terminal and periodic log lines otherwise.
// The bar is drawn by Ollama's progress package; its own Bar counts bytes ("60 B/150 B"), so the
// state it draws is countBar, which counts pairs.
func newProgress(label string) (data.ProgressFunc, func()) {
	var (
		mu   sync.Mutex
		p    *progress.Progress
		bar  *countBar
		last time.Time
		cb   = &countBar{label: label, start: time.Now(), first: -1}
	)
	tty := term.IsTerminal(int(os.Stderr.Fd()))
	fn := func(done, total int) {
		cb.set(done, total)
		if tty {
			mu.Lock()
			defer mu.Unlock()
			if p == nil {
				p, bar = progress.NewProgress(os.Stderr), cb
				p.Add(label, bar)
			}
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if done != total && time.Since(last) < 5*time.Second {
			return
		}
		last = time.Now()
		ev := log.Info().Str("what", label).Int("done", done).Int("total", total)
		if rate, eta, ok := cb.rate(); ok {
			ev = ev.Float64("per_s", float64(int(rate*10))/10).Str("eta", eta.String())
		}
		ev.Msg("progress")
	}
	return fn, func() {
		mu.Lock()
		defer mu.Unlock()
		if p != nil {
			p.Stop()
		}
	}
}

// countBar is a progress.State: "clevr pairs  45% ▕████    ▏ 68/150  11.2/s  ETA 7s".
type countBar struct {
	mu          sync.Mutex
	label       string
	start       time.Time
	first       int // pairs done before this run started: they do not count towards the rate
	done, total int
}

func (b *countBar) set(done, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.first < 0 {
		b.first = done
	}
	b.done, b.total = done, total
}

// rate is pairs per second made in this run and the time left at that rate.
func (b *countBar) rate() (float64, time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	el := time.Since(b.start).Seconds()
	if b.done <= b.first || el <= 0 {
		return 0, 0, false
	}
	r := float64(b.done-b.first) / el
	return r, (time.Duration(float64(b.total-b.done)/r) * time.Second).Round(time.Second), true
}

func (b *countBar) String() string {
	r, eta, ok := b.rate()
	b.mu.Lock()
	done, total := b.done, b.total
	b.mu.Unlock()
	frac := 0.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	suffix := fmt.Sprintf(" %d/%d", done, total)
	if ok {
		suffix += fmt.Sprintf("  %.1f/s  ETA %s", r, eta)
	}
	width := 80
	if w, _, err := term.GetSize(int(os.Stderr.Fd())); err == nil && w > 0 {
		width = w
	}
	prefix := fmt.Sprintf("%s %3.0f%% ", b.label, 100*frac)
	n := max(10, width-len(prefix)-len(suffix)-3)
	fill := int(frac * float64(n))
	return prefix + "▕" + strings.Repeat("█", fill) + strings.Repeat(" ", n-fill) + "▏" + suffix
}
