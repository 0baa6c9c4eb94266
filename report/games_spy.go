package report

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vzlocal/vzlocal/selfplay"
)

// spyGameView reads a line written by selfplay (one selfplay.SpyGame) with its own type, so the page
// can show who said what in which round, the parsed votes and the rewards. ok is false for any other
// record shape, which the generic reader then handles.
func spyGameView(line int, raw []byte, obj map[string]any) (GameView, bool) {
	if _, hasSamples := obj["samples"]; !hasSamples {
		return GameView{}, false
	}
	if _, hasSpy := obj["spy"]; !hasSpy {
		return GameView{}, false
	}
	var g selfplay.SpyGame
	if err := json.Unmarshal(raw, &g); err != nil || len(g.Samples) == 0 {
		return GameView{}, false
	}
	v := GameView{Line: line, Fields: viewGame(line, obj).Fields}
	if len(g.Tally) > 0 {
		parts := make([]string, len(g.Tally))
		for i, n := range g.Tally {
			parts[i] = fmt.Sprintf("P%d:%d", i+1, n)
		}
		v.Fields = append(v.Fields, Field{Key: "tally", Value: strings.Join(parts, " ")})
	}
	addImage := func(label, path string) {
		for _, im := range v.Images {
			if im.Path == path {
				return
			}
		}
		if path != "" {
			v.Images = append(v.Images, ImageRef{Label: label, Path: path})
		}
	}
	addImage("civilians see", g.Original)
	addImage("spy sees", g.SpyImage)
	addImage("modified", g.Modified)

	for _, s := range g.Samples {
		if s == nil {
			continue
		}
		switch s.Stage {
		case selfplay.StageClue:
			text := s.Clue
			if text == "" {
				text = selfplay.NoClue
			}
			v.Clues = append(v.Clues, Utterance{
				Round: s.Round, Player: fmt.Sprint(s.Player), Role: s.Role, Text: text,
				Reasoning: truncate(s.Reasoning, maxReasoning),
				Note:      scoreNote(g.Scored, s.Reward, s.Advantage),
			})
		case selfplay.StageDecision:
			voter := fmt.Sprintf("observer #%d", s.Index+1)
			if s.Player > 0 {
				voter = fmt.Sprintf("player %d", s.Player)
			}
			v.Votes = append(v.Votes, Utterance{
				Player: voter, Role: s.Role, Text: voteText(s.Vote, g.Spy),
				Reasoning: truncate(s.Reasoning, maxReasoning),
				Note:      scoreNote(g.Scored, s.Reward, s.Advantage),
			})
		}
	}
	return v, true
}

func voteText(v *selfplay.SpyVote, spy int) string {
	switch {
	case v == nil:
		return "(no vote)"
	case v.Kind == selfplay.VotePlayer && v.Player == spy:
		return fmt.Sprintf("player %d ✓ (the spy)", v.Player)
	case v.Kind == selfplay.VotePlayer:
		return fmt.Sprintf("player %d ✗", v.Player)
	case v.Kind == selfplay.VoteAbstain:
		return "N/A (abstain)"
	default:
		return v.Kind
	}
}

func scoreNote(scored bool, reward, adv float64) string {
	if !scored {
		return ""
	}
	return fmt.Sprintf("reward %.3f, advantage %.3f", reward, adv)
}
