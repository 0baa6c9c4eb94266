package export

import (
	"fmt"
	"strconv"
	"strings"
)

// Modelfile renders an Ollama Modelfile for m. Paths are written as given (the caller passes
// absolute paths for the base files and ./name for files next to the Modelfile); Ollama resolves
// relative paths against the Modelfile's folder.
func Modelfile(m OllamaModel) (string, error) {
	var b strings.Builder
	b.WriteString("# Written by vzlocal export. Create the model with: ollama create NAME -f Modelfile\n")
	for _, p := range []string{m.Model, m.MMProj} {
		if p == "" {
			continue
		}
		q, err := modelfilePath(p)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "FROM %s\n", q)
	}
	if m.Adapter != "" {
		q, err := modelfilePath(m.Adapter)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "ADAPTER %s\n", q)
	}
	if t := m.Template; t != nil {
		if strings.Contains(t.Template, `"""`) {
			return "", fmt.Errorf("chat template %s contains \"\"\", which a Modelfile cannot quote", t.Name)
		}
		fmt.Fprintf(&b, "TEMPLATE \"\"\"%s\"\"\"\n", t.Template)
		for _, s := range t.Stop {
			fmt.Fprintf(&b, "PARAMETER stop %s\n", strconv.Quote(s))
		}
	}
	return b.String(), nil
}

// modelfilePath quotes a path for a FROM/ADAPTER line when it has spaces; a newline or quote in a
// path cannot be written.
func modelfilePath(p string) (string, error) {
	if strings.ContainsAny(p, "\n\r\"") {
		return "", fmt.Errorf("path %q cannot be written in a Modelfile", p)
	}
	if strings.ContainsAny(p, " \t") {
		return `"` + p + `"`, nil
	}
	return p, nil
}
