package report

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkFigures asserts every chart was drawn: a decodable PNG of the chart size with real
// content (many distinct colours: curves, text, bands; a blank plot has a handful).
func checkFigures(t *testing.T, outDir string, figs []Figure) map[string]image.Image {
	t.Helper()
	require.Len(t, figs, len(figureSpecs))
	imgs := make(map[string]image.Image)
	for _, f := range figs {
		require.NotEmpty(t, f.File, "chart %q not drawn: %s", f.Title, f.Missing)
		path := filepath.Join(outDir, f.File)
		st, err := os.Stat(path)
		require.NoError(t, err)
		assert.Greater(t, st.Size(), int64(20_000), "%s suspiciously small", f.File)
		fh, err := os.Open(path)
		require.NoError(t, err)
		img, err := png.Decode(fh)
		fh.Close()
		require.NoError(t, err, f.File)
		assert.Equal(t, image.Pt(1080, 408), img.Bounds().Size(), f.File)
		assert.Greater(t, distinctColours(img), 40, "%s looks empty", f.File)
		imgs[f.File] = img
	}
	return imgs
}

func distinctColours(img image.Image) int {
	seen := make(map[[4]uint32]bool)
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
		}
	}
	return len(seen)
}

// hasColour says whether some pixel is within tol of c (per 8-bit channel).
func hasColour(img image.Image, c [3]uint8, tol int) bool {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if abs(int(r>>8)-int(c[0])) <= tol && abs(int(g>>8)-int(c[1])) <= tol && abs(int(bl>>8)-int(c[2])) <= tol {
				return true
			}
		}
	}
	return false
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestReportSingleRunRendersEveryPlot(t *testing.T) {
	root := outputRoot(t)
	run := filepath.Join(root, "run1")
	writeSyntheticRun(t, run, syntheticRun{steps: 120, seed: 1, lr: 2e-5, evalEvery: 10, games: 12, spyRecords: true})
	out := filepath.Join(root, "report")

	res, err := Write([]string{run}, Options{OutDir: out, SampleGames: 3})
	require.NoError(t, err)
	imgs := checkFigures(t, out, res.Figures)

	// The reward chart shows both phases in their colours (decision green, clue purple).
	assert.True(t, hasColour(imgs["reward.png"], [3]uint8{0, 158, 115}, 4), "decision markers")
	assert.True(t, hasColour(imgs["reward.png"], [3]uint8{204, 121, 167}, 4), "clue markers")

	page, err := os.ReadFile(res.Page)
	require.NoError(t, err)
	html := string(page)
	for _, f := range res.Figures {
		assert.Contains(t, html, `src="`+f.File+`"`)
	}
	run1, err := LoadRun(run, LoadOptions{})
	require.NoError(t, err)
	spans := Timeline(run1.Steps)
	require.Greater(t, len(spans), 2, "the synthetic run must switch phases")
	for _, s := range spans {
		assert.Contains(t, html, "<td>"+strconv.Itoa(s.From)+"–"+strconv.Itoa(s.To)+"</td>")
	}
	assert.Contains(t, html, strconv.Itoa(len(spans)-1)+" switches")
	assert.Contains(t, html, "&#34;rank&#34;: 16", "config shown")
	assert.Contains(t, html, "3 of 12 games")
	// selfplay's game records are read with their own type: rounds, roles, parsed votes, rewards.
	assert.Contains(t, html, "round 2, player 4")
	assert.Contains(t, html, "Player 3: a metal sphere on the left.")
	assert.Contains(t, html, "(spy)", "the spy's clues are marked")
	assert.Contains(t, html, "✓ (the spy)")
	assert.Contains(t, html, "N/A (abstain)")
	assert.Contains(t, html, "reward 2.490, advantage 1.200")
	assert.Contains(t, html, "civilians see: 000_a.png")
	assert.Contains(t, html, "tally: <b>P1:1 P2:0 P3:0 P4:0</b>")
	evalRows := regexp.MustCompile(`<tr><td>\d+</td><td>40</td><td>\d+</td>`).FindAllString(html, -1)
	assert.Len(t, evalRows, 12, "one eval row per 10 steps, 40 games each")

	// Sample game images are copied next to the page and referenced relatively.
	copied, err := filepath.Glob(filepath.Join(out, "images", "*.png"))
	require.NoError(t, err)
	assert.Len(t, copied, 6, "two images for each of three games")
	for _, c := range copied {
		assert.Contains(t, html, `src="images/`+filepath.Base(c)+`"`)
	}
	// Atomic writes leave no temporary files.
	leftovers, _ := filepath.Glob(filepath.Join(out, ".*tmp*"))
	assert.Empty(t, leftovers)
}

func TestReportComparesTwoRuns(t *testing.T) {
	root := outputRoot(t)
	// Two folders with the same base name: the legend must still tell them apart.
	a := filepath.Join(root, "lr2e-5", "run")
	b := filepath.Join(root, "lr5e-5", "run")
	writeSyntheticRun(t, a, syntheticRun{steps: 80, seed: 1, lr: 2e-5, evalEvery: 10})
	writeSyntheticRun(t, b, syntheticRun{steps: 100, seed: 2, lr: 5e-5, evalEvery: 20, evalInMetrics: true, games: 4})
	out := filepath.Join(root, "compare")

	res, err := Write([]string{a, b}, Options{OutDir: out, SampleGames: 2})
	require.NoError(t, err)
	imgs := checkFigures(t, out, res.Figures)
	// Each run's colour appears in the overlaid curves.
	for _, name := range []string{"kl.png", "winrate.png", "decision.png"} {
		assert.True(t, hasColour(imgs[name], [3]uint8{0, 114, 178}, 4), "%s: first run", name)
		assert.True(t, hasColour(imgs[name], [3]uint8{230, 159, 0}, 4), "%s: second run", name)
	}

	page, err := os.ReadFile(res.Page)
	require.NoError(t, err)
	html := string(page)
	assert.Contains(t, html, "lr2e-5/run vs lr5e-5/run")
	assert.Contains(t, html, "<tr><th>steps</th><td>80 (step 1 to 80)</td><td>100 (step 1 to 100)</td></tr>", "summaries side by side")
	assert.Contains(t, html, "<tr><th>games logged</th><td>—</td><td>4</td></tr>", "a number one run lacks")
	assert.Contains(t, html, "Settings that differ")
	assert.Contains(t, html, "<code>lr</code>")
	assert.NotContains(t, html, "<code>lora.rank</code>", "equal settings are not listed as differences")
	assert.Contains(t, html, "From metrics.jsonl", "second run's evaluations come from the Eval* fields")
	assert.Contains(t, html, "No games.jsonl in")
	// The second run's games use a generic record shape.
	assert.Contains(t, html, "There is a red object near the centre.")
	assert.Contains(t, html, "(spy)", "the spy's clues are marked from the record's spy field")
	assert.Regexp(t, `<b>Votes</b>: \d, \d, N/A, `, html)
}

func TestReportWithoutEvaluations(t *testing.T) {
	run := filepath.Join(t.TempDir(), "noeval")
	writeSyntheticRun(t, run, syntheticRun{steps: 30, seed: 3, lr: 1e-5})
	out := filepath.Join(t.TempDir(), "r")
	// A win-rate chart left by an earlier report of this folder is removed.
	require.NoError(t, os.MkdirAll(out, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(out, "winrate.png"), []byte("old"), 0o644))
	res, err := Write([]string{run}, Options{OutDir: out})
	require.NoError(t, err)
	for _, f := range res.Figures {
		if f.Title == "Win rate against the reference" {
			assert.Empty(t, f.File)
			assert.Contains(t, f.Missing, "no evaluation")
			assert.NoFileExists(t, filepath.Join(out, "winrate.png"))
		} else {
			assert.FileExists(t, filepath.Join(out, f.File))
		}
	}
	page, err := os.ReadFile(res.Page)
	require.NoError(t, err)
	assert.Contains(t, string(page), "no evaluation recorded")
}

// outputRoot is a fresh temporary folder, or, when VZLOCAL_REPORT_TEST_OUT is set, a folder under
// it that the test leaves behind so the rendered report can be looked at.
func outputRoot(t *testing.T) string {
	base := os.Getenv("VZLOCAL_REPORT_TEST_OUT")
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, t.Name())
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

func TestReportTinyRuns(t *testing.T) {
	// One step; constant metrics (KL is exactly 0 when beta_KL = 0); a single evaluation.
	tests := map[string]string{
		"one step": `{"step":1,"phase":"decision","reward_mean":0.3,"eval_win_rate":0.5,"eval_games":10}`,
		"constant": `{"step":1,"phase":"clue","kl":0}` + "\n" + `{"step":2,"phase":"clue","kl":0}` + "\n" + `{"step":3,"phase":"clue","kl":0}`,
		"no phase": `{"step":0}` + "\n" + `{"step":5}`,
	}
	for name, metrics := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, MetricsFile), []byte(metrics+"\n"), 0o644))
			out := filepath.Join(dir, "report")
			res, err := Write([]string{dir}, Options{OutDir: out, SampleGames: 3})
			require.NoError(t, err)
			for _, f := range res.Figures {
				if f.File == "" {
					continue
				}
				fh, err := os.Open(filepath.Join(out, f.File))
				require.NoError(t, err)
				_, err = png.Decode(fh)
				fh.Close()
				require.NoError(t, err, f.File)
			}
		})
	}
}

func TestReportSkipsUnmeasuredCharts(t *testing.T) {
	// A questioner/solver run through a backend without log-probs or timings, beta_KL = 0: only
	// rewards and completion lengths were measured, plus the accuracy chart every game fills
	// (solver accuracy here; zero is a result, not a missing metric).
	dir := t.TempDir()
	metrics := `{"step":1,"phase":"questioner","reward_mean":0.1,"completion_len_mean":120,"completion_len_max":300}
{"step":2,"phase":"questioner","reward_mean":0.2,"completion_len_mean":130,"completion_len_max":310}
{"step":3,"phase":"solver","phase_switched":true,"reward_mean":0.6,"completion_len_mean":90,"completion_len_max":200}
`
	require.NoError(t, os.WriteFile(filepath.Join(dir, MetricsFile), []byte(metrics), 0o644))
	out := filepath.Join(dir, "report")
	res, err := Write([]string{dir}, Options{OutDir: out})
	require.NoError(t, err)
	drawn := make(map[string]bool)
	for _, f := range res.Figures {
		if f.File != "" {
			drawn[f.File] = true
		} else {
			assert.NotEmpty(t, f.Missing, f.Title)
		}
	}
	assert.Equal(t, map[string]bool{"reward.png": true, "completion.png": true, "decision.png": true}, drawn)
	page, err := os.ReadFile(res.Page)
	require.NoError(t, err)
	assert.Contains(t, string(page), "<b>KL to the reference</b>: not measured in these runs")
	assert.Contains(t, string(page), "questioner: 2 steps")
	assert.NotContains(t, string(page), "decision accuracy", "not in the summary of a run without decisions")
}

func TestReportImageProblems(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, MetricsFile), []byte(goodStep1+"\n"), 0o644))
	// A sparse file over the copy limit, and a path that does not exist.
	huge := filepath.Join(dir, "huge.png")
	f, err := os.Create(huge)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(maxImageBytes+1))
	require.NoError(t, f.Close())
	games := `{"spy":1,"original":"huge.png","modified":"gone/missing.png"}` + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, GamesFile), []byte(games), 0o644))
	out := filepath.Join(dir, "report")
	res, err := Write([]string{dir}, Options{OutDir: out, SampleGames: 1})
	require.NoError(t, err)
	page, err := os.ReadFile(res.Page)
	require.NoError(t, err)
	assert.Contains(t, string(page), "image not copied: 8.0 MiB is over the 8 MiB limit")
	assert.Contains(t, string(page), "image not found")
	assert.NoDirExists(t, filepath.Join(out, "images"), "nothing was copied")
}
