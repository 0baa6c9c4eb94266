// Package report turns training runs into evidence: PNG charts of the metrics that training logs,
// the win rate against the frozen base with its Wilson interval, and an HTML page that gathers
// them with the configuration, the phase timeline and sample games. Several runs are overlaid for
// comparison. The statistics (Wilson interval, win tallies) are shared with the eval command.
package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vzlocal/vzlocal/internal/atomicfile"

	"github.com/rs/zerolog/log"
)

// PageFile is the HTML page inside the output folder.
const PageFile = "index.html"

// Options of a report.
type Options struct {
	OutDir      string // created if missing
	SampleGames int    // games shown per run (0: none)
}

// Result says what a report wrote.
type Result struct {
	Page    string // path of index.html
	Figures []Figure
}

// Write loads the run folders and writes the charts, copied game images and index.html into
// opt.OutDir. One run gives that run's report; several overlay their curves.
func Write(runDirs []string, opt Options) (*Result, error) {
	if len(runDirs) == 0 {
		return nil, fmt.Errorf("report: no run folder given")
	}
	if opt.OutDir == "" {
		return nil, fmt.Errorf("report: no output folder given")
	}
	runs := make([]*Run, 0, len(runDirs))
	for _, dir := range runDirs {
		r, err := LoadRun(dir, LoadOptions{SampleGames: opt.SampleGames})
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	uniqueNames(runs)
	if err := os.MkdirAll(opt.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	figs, err := writeFigures(runs, opt.OutDir)
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		if err := copyGameImages(r, opt.OutDir); err != nil {
			return nil, err
		}
	}
	var page bytes.Buffer
	if err := renderPage(&page, runs, figs); err != nil {
		return nil, err
	}
	pagePath := filepath.Join(opt.OutDir, PageFile)
	if err := atomicfile.WriteFile(pagePath, page.Bytes()); err != nil {
		return nil, err
	}
	log.Info().Str("page", pagePath).Int("runs", len(runs)).Int("charts", countDrawn(figs)).Msg("report written")
	return &Result{Page: pagePath, Figures: figs}, nil
}

func countDrawn(figs []Figure) int {
	n := 0
	for _, f := range figs {
		if f.File != "" {
			n++
		}
	}
	return n
}

// uniqueNames makes run names distinct for legends: two folders called "run" under different
// parents become "a/run" and "b/run".
func uniqueNames(runs []*Run) {
	count := make(map[string]int)
	for _, r := range runs {
		count[r.Name]++
	}
	for _, r := range runs {
		if count[r.Name] < 2 {
			continue
		}
		abs, err := filepath.Abs(r.Dir)
		if err != nil {
			abs = r.Dir
		}
		parent := filepath.Base(filepath.Dir(abs))
		r.Name = parent + "/" + r.Name
	}
	// Still equal (same folder given twice): number them.
	seen := make(map[string]int)
	for _, r := range runs {
		seen[r.Name]++
		if seen[r.Name] > 1 {
			r.Name = fmt.Sprintf("%s (%d)", r.Name, seen[r.Name])
		}
	}
}
