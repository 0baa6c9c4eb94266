package main

import (
	"fmt"
	"os"
	"runtime"
	"text/tabwriter"

	"github.com/vzlocal/vzlocal/bench"
)

// benchCmd measures what matters on the user's own model; the full suite is `make bench`.
type benchCmd struct {
	Rollout benchRolloutCmd `cmd:"" help:"Rollout tokens/s of your GGUF: G completions decoded in parallel vs one after another."`
}

type benchRolloutCmd struct {
	Model   string `help:"Text model GGUF." required:"" type:"existingfile"`
	Mmproj  string `help:"Vision projector GGUF (the prompt then carries an image)." type:"existingfile"`
	G       []int  `help:"Group sizes to measure." default:"1,4,8"`
	Tokens  int    `help:"Tokens per completion." default:"64"`
	Rounds  int    `help:"Rounds of G completions per measurement." default:"2"`
	Threads int    `help:"CPU threads (0: all cores)."`
}

func (c *benchRolloutCmd) Run() error {
	threads := c.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	if c.Tokens < 1 || c.Rounds < 1 {
		return fmt.Errorf("bench rollout: --tokens and --rounds must be >= 1")
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "G\tparallel tok/s\tsequential tok/s\tratio\t")
	for _, g := range c.G {
		if g < 1 {
			return fmt.Errorf("bench rollout: group size %d: want >= 1", g)
		}
		par, seq, err := bench.RolloutRatio(c.Model, c.Mmproj, threads, g, c.Tokens, c.Rounds)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%d\t%.1f\t%.1f\t%.2f\t\n", g, par, seq, par/seq)
	}
	return w.Flush()
}
