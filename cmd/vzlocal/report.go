package main

import (
	"fmt"
	"path/filepath"

	"github.com/rs/zerolog/log"

	"github.com/vzlocal/vzlocal/report"
)

// reportCmd writes the plots and the HTML page of one run, or overlays several runs.
type reportCmd struct {
	Runs  []string `arg:"" name:"rundir" help:"Run folder(s): metrics.jsonl, and optionally config.json, games.jsonl, eval.jsonl."`
	Out   string   `help:"Output folder (default: RUNDIR/report for one run, ./report-compare for several)." placeholder:"DIR"`
	Games int      `help:"Sample games shown per run, spread over the run." default:"3"`
}

func (c *reportCmd) Run() error {
	if c.Games < 0 {
		return fmt.Errorf("vzlocal report: --games must be >= 0, got %d", c.Games)
	}
	out := c.Out
	if out == "" {
		out = defaultReportDir(c.Runs)
	}
	res, err := report.Write(c.Runs, report.Options{OutDir: out, SampleGames: c.Games})
	if err != nil {
		return fmt.Errorf("vzlocal report: %w", err)
	}
	for _, f := range res.Figures {
		if f.File == "" {
			log.Warn().Str("chart", f.Title).Msg(f.Missing)
		}
	}
	fmt.Println(res.Page)
	return nil
}

// defaultReportDir keeps a run's report inside the run folder; a comparison belongs to no single
// run, so it goes in the current folder.
func defaultReportDir(runs []string) string {
	if len(runs) == 1 {
		return filepath.Join(runs[0], "report")
	}
	return "report-compare"
}
