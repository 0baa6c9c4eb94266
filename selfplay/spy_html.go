package selfplay

import (
	"bytes"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"mime"
	"os"
	"path/filepath"

	"github.com/vzlocal/vzlocal/internal/atomicfile"
)

//go:embed report/spy_report.html.tmpl
var spyReportFS embed.FS

var spyReportTmpl = template.Must(template.New("spy_report.html.tmpl").
	Funcs(template.FuncMap{"inc": func(i int) int { return i + 1 }}).
	ParseFS(spyReportFS, "report/spy_report.html.tmpl"))

type spyReportGame struct {
	*SpyGame
	OriginalURI  template.URL
	SpyURI       template.URL
	SpyImageName string
	Clues        []*SpySample
	Decisions    []spyReportVote
}

type spyReportVote struct {
	Who       string
	Vote      string
	Hit       bool
	Reward    float64
	Advantage float64
	Text      string
}

// WriteSpyReport writes a self-contained HTML page (images embedded as data URIs) with each scored
// game's two images side by side and its transcript.
func WriteSpyReport(path, title string, games []*SpyGame, sum SpySummary) error {
	uris := map[string]template.URL{}
	uri := func(img string) (template.URL, error) {
		if u, ok := uris[img]; ok {
			return u, nil
		}
		b, err := os.ReadFile(img)
		if err != nil {
			return "", fmt.Errorf("report image: %w", err)
		}
		typ := mime.TypeByExtension(filepath.Ext(img))
		if typ == "" {
			typ = "image/png"
		}
		u := template.URL("data:" + typ + ";base64," + base64.StdEncoding.EncodeToString(b))
		uris[img] = u
		return u, nil
	}
	var rows []spyReportGame
	for _, g := range games {
		r := spyReportGame{SpyGame: g, SpyImageName: filepath.Base(g.SpyImage)}
		var err error
		if r.OriginalURI, err = uri(g.Original); err != nil {
			return err
		}
		if r.SpyURI, err = uri(g.SpyImage); err != nil {
			return err
		}
		for _, x := range g.Samples {
			if x.Stage == StageClue {
				r.Clues = append(r.Clues, x)
				continue
			}
			v := spyReportVote{Who: "observer", Vote: "invalid", Reward: x.Reward, Advantage: x.Advantage, Text: x.Text}
			if x.Role == RoleVoter {
				v.Who = fmt.Sprintf("voter P%d", x.Player)
			}
			if x.Vote != nil {
				switch x.Vote.Kind {
				case VoteAbstain:
					v.Vote = "N/A"
				case VotePlayer:
					v.Vote = fmt.Sprintf("P%d", x.Vote.Player)
					v.Hit = x.Vote.Player == g.Spy
				}
			}
			r.Decisions = append(r.Decisions, v)
		}
		rows = append(rows, r)
	}
	var buf bytes.Buffer
	err := spyReportTmpl.Execute(&buf, struct {
		Title   string
		Summary string
		Games   []spyReportGame
	}{title, sum.String(), rows})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
