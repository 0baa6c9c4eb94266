package selfplay

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/vzlocal/vzlocal/internal/atomicfile"
)

// SpyGamesFile is the trajectory file of `vzlocal play`: one SpyGame per line (JSON), each with
// every sample of the game in play order. One game per line keeps a game's turn order, visibility
// and zero-sum checks local to a line.
const SpyGamesFile = "games.jsonl"

// WriteSpyGames writes games as JSONL to path atomically (a temporary file, then a rename).
func WriteSpyGames(path string, games []*SpyGame) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for _, g := range games {
		if err := enc.Encode(g); err != nil {
			return fmt.Errorf("%s: game %d: %w", path, g.ID, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// ReadSpyGames reads a games.jsonl file; a bad line is an error naming the file and the line.
func ReadSpyGames(path string) ([]*SpyGame, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readSpyGames(path, f)
}

func readSpyGames(name string, r io.Reader) ([]*SpyGame, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<30)
	var games []*SpyGame
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		g := new(SpyGame)
		if err := json.Unmarshal(b, g); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, line, err)
		}
		games = append(games, g)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return games, nil
}
