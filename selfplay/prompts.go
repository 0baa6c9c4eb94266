package selfplay

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// promptSet is one game's prompt templates: the embedded defaults, each replaceable by a file of
// the same name in a --prompts folder. Both games keep their files in one folder, told apart by
// their prefix ("spy_", "qs_"): a file with this game's prefix but an unknown name is an error (a
// typo would otherwise be ignored), files of other games are skipped.
type promptSet struct {
	tmpl    map[string]*template.Template
	sources map[string]string // where each template came from, for error messages
}

func loadPromptSet(embedded embed.FS, game, prefix string, names []string, dir string) (*promptSet, error) {
	p := &promptSet{tmpl: map[string]*template.Template{}, sources: map[string]string{}}
	for _, name := range names {
		b, err := embedded.ReadFile("prompts/" + name)
		if err != nil {
			return nil, fmt.Errorf("embedded prompt %s: %w", name, err)
		}
		p.sources[name] = "embedded " + name
		if err := p.parse(name, string(b)); err != nil {
			return nil, err
		}
	}
	if dir == "" {
		return p, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("prompt folder %s: %w", dir, err)
	}
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, prefix) {
			continue
		}
		if !known[name] {
			return nil, fmt.Errorf("prompt folder %s: unknown %s template %s (known: %s)",
				dir, game, name, strings.Join(names, ", "))
		}
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("prompt %s: %w", path, err)
		}
		p.sources[name] = path
		if err := p.parse(name, string(b)); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *promptSet) parse(name, text string) error {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return fmt.Errorf("prompt %s: %w", p.sources[name], err)
	}
	p.tmpl[name] = t
	return nil
}

func (p *promptSet) render(name string, data any) (string, error) {
	t, ok := p.tmpl[name]
	if !ok {
		return "", fmt.Errorf("no prompt template %s", name)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return "", fmt.Errorf("prompt %s: %w", p.sources[name], err)
	}
	return buf.String(), nil
}
