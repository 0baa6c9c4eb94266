package report

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// GameSample is a few games of games.jsonl, spread evenly over the run, decoded generically: the
// transcript schema belongs to selfplay and may grow, so the report looks for the fields any
// version has (clues, votes, spy, image paths) and shows the rest as plain key/value pairs.
type GameSample struct {
	Total int // games in the file
	Games []GameView
}

// GameView is one game as the page shows it.
type GameView struct {
	Line   int     // line of games.jsonl
	Fields []Field // scalar top-level fields (step, spy, winner, ...)
	Images []ImageRef
	Clues  []Utterance
	Votes  []Utterance
	// BareVotes is true when the votes are plain answers (no voter, no reasoning): the page then
	// lists them on one line.
	BareVotes bool
}

// Field is one scalar field of a game record.
type Field struct{ Key, Value string }

// ImageRef is an image a game refers to: Label is the JSON path of the field, Path as written
// in the record; Src is filled in when the page copies the image next to itself, Problem when it
// cannot.
type ImageRef struct {
	Label, Path, Src, Problem string
}

// Utterance is one clue or vote.
type Utterance struct {
	Round     int // 0 when unknown
	Player    string
	Role      string
	Text      string // the answer (clue sentence or vote)
	Reasoning string // the private reasoning, when recorded
	Note      string // reward and advantage, when recorded
}

// Keys tried, in order, for each part of a game record.
var (
	clueKeys      = []string{"clues", "clue_stage", "utterances", "turns"}
	voteKeys      = []string{"votes", "decisions", "decision", "observer", "ballots"}
	playerKeys    = []string{"player", "speaker", "voter", "id"}
	textKeys      = []string{"clue", "answer", "vote", "text", "content", "parsed"}
	reasoningKeys = []string{"reasoning", "completion", "raw", "output", "response"}
	imageExts     = map[string]bool{".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".webp": true, ".bmp": true}
)

const (
	maxImagesPerGame = 4
	maxReasoning     = 1500 // characters of private reasoning shown per utterance
)

// sampleGames reads games.jsonl twice: once to count (and check) the lines, once to decode the
// chosen ones, so a file of thousands of long transcripts is never held in memory.
func sampleGames(path string, want int) (GameSample, error) {
	var s GameSample
	err := forEachLine(path, func(_ int, raw []byte) error {
		if len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) {
			return fmt.Errorf("not a JSON object: %s", snippet(raw))
		}
		s.Total++
		return nil
	})
	if err != nil || s.Total == 0 || want <= 0 {
		return s, err
	}
	pick := spread(s.Total, want)
	idx := 0
	err = forEachLine(path, func(line int, raw []byte) error {
		defer func() { idx++ }()
		if _, ok := pick[idx]; !ok {
			return nil
		}
		var obj map[string]any
		if err := json.Unmarshal(raw, &obj); err != nil {
			return fmt.Errorf("invalid JSON: %w", err)
		}
		if g, ok := spyGameView(line, raw, obj); ok {
			s.Games = append(s.Games, g)
			return nil
		}
		s.Games = append(s.Games, viewGame(line, obj))
		return nil
	})
	return s, err
}

// spread picks up to want indices out of n, evenly spaced, always including the first and last
// game (the start and the end of training are what a reader compares).
func spread(n, want int) map[int]struct{} {
	out := make(map[int]struct{})
	if want >= n {
		for i := 0; i < n; i++ {
			out[i] = struct{}{}
		}
		return out
	}
	if want == 1 {
		out[n-1] = struct{}{}
		return out
	}
	for k := 0; k < want; k++ {
		out[k*(n-1)/(want-1)] = struct{}{}
	}
	return out
}

// viewGame extracts what the page shows from one decoded record.
func viewGame(line int, obj map[string]any) GameView {
	g := GameView{Line: line}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		// Image paths are shown with their images, not repeated as fields.
		if v, ok := scalarString(obj[k]); ok && !isImagePath(v) {
			g.Fields = append(g.Fields, Field{Key: k, Value: v})
		}
	}
	if v, ok := firstKey(obj, clueKeys); ok {
		g.Clues = utterances(v, 0)
	}
	if v, ok := firstKey(obj, voteKeys); ok {
		g.Votes = utterances(v, 0)
	}
	// Name the spy among the speakers when the record says who it is and the clues do not.
	if v, ok := firstKey(obj, []string{"spy", "spy_player"}); ok {
		if spy, isScalar := scalarString(v); isScalar {
			for i := range g.Clues {
				if g.Clues[i].Player == spy && g.Clues[i].Role == "" {
					g.Clues[i].Role = "spy"
				}
			}
		}
	}
	g.BareVotes = len(g.Votes) > 0
	for _, u := range g.Votes {
		if u.Player != "" || u.Reasoning != "" || u.Role != "" {
			g.BareVotes = false
		}
	}
	seen := make(map[string]bool)
	walkImages("", obj, func(label, path string) {
		if !seen[path] && len(g.Images) < maxImagesPerGame {
			seen[path] = true
			g.Images = append(g.Images, ImageRef{Label: label, Path: path})
		}
	})
	return g
}

func firstKey(obj map[string]any, keys []string) (any, bool) {
	for _, k := range keys {
		if v, ok := obj[k]; ok && v != nil {
			return v, true
		}
	}
	return nil, false
}

// utterances flattens a list of clues or votes. Elements may be objects (player, round, text,
// reasoning), plain values (a vote "3" or "N/A"), or lists of either (one list per round).
func utterances(v any, round int) []Utterance {
	list, ok := v.([]any)
	if !ok {
		if obj, isObj := v.(map[string]any); isObj {
			// A single decision record, or votes keyed by player.
			if _, hasText := firstKey(obj, textKeys); hasText {
				return []Utterance{utterance(obj, round)}
			}
			return keyedUtterances(obj, round)
		}
		s, _ := scalarString(v)
		return []Utterance{{Round: round, Text: s}}
	}
	var out []Utterance
	for i, el := range list {
		switch el := el.(type) {
		case []any:
			out = append(out, utterances(el, i+1)...)
		case map[string]any:
			out = append(out, utterance(el, round))
		default:
			s, _ := scalarString(el)
			out = append(out, Utterance{Round: round, Text: s})
		}
	}
	return out
}

func keyedUtterances(obj map[string]any, round int) []Utterance {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Utterance
	for _, k := range keys {
		for _, u := range utterances(obj[k], round) {
			if u.Player == "" {
				u.Player = k
			}
			out = append(out, u)
		}
	}
	return out
}

func utterance(obj map[string]any, round int) Utterance {
	u := Utterance{Round: round}
	if v, ok := firstKey(obj, []string{"round"}); ok {
		if f, isNum := v.(float64); isNum {
			u.Round = int(f)
		}
	}
	if v, ok := firstKey(obj, playerKeys); ok {
		u.Player, _ = scalarString(v)
	}
	if v, ok := obj["role"]; ok {
		u.Role, _ = scalarString(v)
	}
	if v, ok := firstKey(obj, textKeys); ok {
		u.Text, _ = scalarString(v)
	}
	if v, ok := firstKey(obj, reasoningKeys); ok {
		r, _ := scalarString(v)
		if r != u.Text {
			u.Reasoning = truncate(r, maxReasoning)
		}
	}
	return u
}

// walkImages calls fn for every string field that names an image file, with the field's path.
func walkImages(prefix string, v any, fn func(label, path string)) {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			walkImages(joinPath(prefix, k), v[k], fn)
		}
	case []any:
		for i, el := range v {
			walkImages(fmt.Sprintf("%s[%d]", prefix, i), el, fn)
		}
	case string:
		if isImagePath(v) {
			fn(prefix, v)
		}
	}
}

func isImagePath(s string) bool {
	return imageExts[strings.ToLower(filepath.Ext(s))] && !strings.ContainsAny(s, "\n\x00")
}

func joinPath(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// scalarString formats JSON scalars; ok is false for objects and lists.
func scalarString(v any) (string, bool) {
	switch v := v.(type) {
	case nil:
		return "null", true
	case string:
		return v, true
	case bool:
		return fmt.Sprint(v), true
	case float64:
		// Whole numbers as integers (ids, steps); others to 5 significant digits (a baseline of
		// 0.026666666666666666 reads as 0.026667).
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatFloat(v, 'f', 0, 64), true
		}
		return strconv.FormatFloat(v, 'g', 5, 64), true
	case json.Number:
		return v.String(), true
	}
	return "", false
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + " …"
}
