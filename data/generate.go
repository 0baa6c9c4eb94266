package data

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/vzlocal/vzlocal/internal/atomicfile"

	"github.com/rs/zerolog/log"
)

// ProgressFunc is told, after every finished pair, how many of the total are done (pairs found
// complete from an earlier run count as done from the start).
type ProgressFunc func(done, total int)

// Report says what a generation run did.
type Report struct {
	Total   int           // pairs in the folder's index at the end
	Written int           // pairs made in this run
	Reused  int           // pairs already complete from an earlier run
	Skipped []SkippedFile // bad source files that were passed over
	Elapsed time.Duration
}

// SkippedFile is a source file that could not be used, with the reason.
type SkippedFile struct {
	Path string
	Err  error
}

// SourceError marks a problem with one source file: the run skips the file and goes on.
type SourceError struct {
	Path string
	Err  error
}

func (e *SourceError) Error() string { return fmt.Sprintf("%s: %v", e.Path, e.Err) }
func (e *SourceError) Unwrap() error { return e.Err }

// job makes one pair in memory; id names its files.
type job struct {
	id   string
	make func() (*Pair, image.Image, image.Image, error)
}

// runIndexed runs n numbered jobs: pair i is render(i), with id pairID(i). The generators of
// rendered kinds (CLEVR, charts) go through it.
func runIndexed(outDir, kind string, n int, settings any, workers int, progress ProgressFunc,
	render func(i int) (*Pair, *image.RGBA, *image.RGBA, error)) (Report, error) {
	if n <= 0 {
		return Report{}, fmt.Errorf("%s: number of pairs must be positive, got %d", kind, n)
	}
	jobs := make([]job, n)
	for i := range jobs {
		jobs[i] = job{id: pairID(i), make: func() (*Pair, image.Image, image.Image, error) {
			p, a, b, err := render(i)
			return p, a, b, err
		}}
	}
	return runJobs(outDir, kind, settings, jobs, workers, progress)
}

// runJobs makes every job's pair in outDir with the given number of workers, skipping pairs an
// earlier run finished, and rebuilds index.jsonl in job order at the end. Each pair's images are
// written first and its JSON last, each file atomically, so a pair whose JSON exists is complete.
func runJobs(outDir, kind string, settings any, jobs []job, workers int, progress ProgressFunc) (Report, error) {
	start := time.Now()
	if err := ensureWritableDir(outDir); err != nil {
		return Report{}, err
	}
	if err := checkSettings(outDir, kind, settings); err != nil {
		return Report{}, err
	}
	// temporary files of an interrupted run are never complete: remove them
	if stale, err := filepath.Glob(filepath.Join(outDir, ".*.tmp*")); err == nil {
		for _, f := range stale {
			os.Remove(f)
		}
	}
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	results := make([]*Pair, len(jobs))
	var rep Report
	var todo []int
	for i, j := range jobs {
		if p, ok := completePair(outDir, j.id); ok {
			results[i] = p
			rep.Reused++
			continue
		}
		todo = append(todo, i)
	}
	var (
		mu       sync.Mutex
		firstErr error
		done     = rep.Reused
		wg       sync.WaitGroup
		next     = make(chan int)
	)
	if progress != nil {
		progress(done, len(jobs))
	}
	for w := 0; w < min(workers, max(1, len(todo))); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				p, err := makeAndWrite(outDir, jobs[i])
				mu.Lock()
				var se *SourceError
				switch {
				case errors.As(err, &se):
					// a file used by several pairs is reported once
					if !slices.ContainsFunc(rep.Skipped, func(s SkippedFile) bool { return s.Path == se.Path }) {
						rep.Skipped = append(rep.Skipped, SkippedFile{Path: se.Path, Err: se.Err})
						log.Warn().Str("file", se.Path).Err(se.Err).Msg("skipping source file")
					}
				case err != nil:
					if firstErr == nil {
						firstErr = err
					}
				default:
					results[i] = p
					rep.Written++
				}
				done++
				if progress != nil {
					progress(done, len(jobs))
				}
				mu.Unlock()
			}
		}()
	}
	for _, i := range todo {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return rep, firstErr
	}
	var pairs []*Pair
	for _, p := range results {
		if p != nil {
			pairs = append(pairs, p)
		}
	}
	if err := writeIndex(outDir, pairs); err != nil {
		return rep, err
	}
	rep.Total = len(pairs)
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// SettingsFile records how a folder's pairs were made. A rerun reuses finished pairs only when
// the settings are the same (the number of pairs and of workers may differ): pairs made with
// another seed or size must not be mixed in silently.
const SettingsFile = "settings.json"

func checkSettings(dir, kind string, settings any) error {
	b, err := json.MarshalIndent(struct {
		Kind     string `json:"kind"`
		Settings any    `json:"settings"`
	}{kind, settings}, "", "  ")
	if err != nil {
		return fmt.Errorf("settings of %s: %w", dir, err)
	}
	b = append(b, '\n')
	path := filepath.Join(dir, SettingsFile)
	old, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return atomicfile.WriteFile(path, b)
	case err != nil:
		return fmt.Errorf("%s: %w", path, err)
	case !bytes.Equal(old, b):
		return fmt.Errorf("%s holds pairs made with other settings (see %s); choose another output folder or empty this one", dir, path)
	}
	return nil
}

// completePair returns the pair an earlier run finished: its JSON parses and both images exist.
func completePair(dir, id string) (*Pair, bool) {
	b, err := os.ReadFile(filepath.Join(dir, id+".json"))
	if err != nil {
		return nil, false
	}
	p := new(Pair)
	if json.Unmarshal(b, p) != nil || p.ID != id {
		return nil, false
	}
	p.SetDir(dir)
	for _, f := range []string{p.OriginalPath(), p.ModifiedPath()} {
		if st, err := os.Stat(f); err != nil || st.Size() == 0 {
			return nil, false
		}
	}
	return p, true
}

func makeAndWrite(dir string, j job) (*Pair, error) {
	t0 := time.Now()
	p, orig, mod, err := j.make()
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	p.ID = j.id
	if err := WritePair(dir, p, orig, mod); err != nil {
		return nil, err
	}
	log.Debug().Str("id", p.ID).Dur("make", t1.Sub(t0)).Dur("write", time.Since(t1)).Msg("pair")
	return p, nil
}

// WritePair writes a pair's two PNG images and then its JSON into dir, each atomically, and sets
// p.Original, p.Modified, Width, Height and the pair's folder.
func WritePair(dir string, p *Pair, orig, mod image.Image) error {
	if p.ID == "" {
		return errors.New("write pair: empty id")
	}
	if orig.Bounds().Size() != mod.Bounds().Size() {
		return fmt.Errorf("write pair %s: original is %v but modified is %v", p.ID, orig.Bounds().Size(), mod.Bounds().Size())
	}
	p.Original, p.Modified = p.ID+".original.png", p.ID+".modified.png"
	p.Width, p.Height = orig.Bounds().Dx(), orig.Bounds().Dy()
	for name, img := range map[string]image.Image{p.Original: orig, p.Modified: mod} {
		if err := writePNG(filepath.Join(dir, name), img); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("pair %s: %w", p.ID, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, p.ID+".json"), append(b, '\n')); err != nil {
		return err
	}
	p.SetDir(dir)
	return nil
}

// BestSpeed: a fifth less time per pair than the default level for a third more bytes (16 KB
// instead of 12 KB for a 320x240 scene).
var pngEncoder = png.Encoder{CompressionLevel: png.BestSpeed}

func writePNG(path string, img image.Image) error {
	var buf bytes.Buffer
	if err := pngEncoder.Encode(&buf, img); err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, buf.Bytes())
}

// writeIndex rewrites index.jsonl with one pair per line, in the given order.
func writeIndex(dir string, pairs []*Pair) error {
	var buf bytes.Buffer
	for _, p := range pairs {
		b, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("index of %s: pair %s: %w", dir, p.ID, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return atomicfile.WriteFile(filepath.Join(dir, IndexFile), buf.Bytes())
}

// ensureWritableDir creates dir if needed and proves it can hold new files.
func ensureWritableDir(dir string) error {
	if dir == "" {
		return errors.New("output folder: empty path")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("output folder %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".vzlocal-write-test*")
	if err != nil {
		return fmt.Errorf("output folder %s is not writable: %w", dir, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}
