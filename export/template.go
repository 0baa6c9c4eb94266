package export

import (
	"strings"

	"github.com/ollama/ollama/template"
)

// ChatTemplate is a model's chat template in Ollama's Go-template form with its stop words.
type ChatTemplate struct {
	Name     string // family it was recognised as ("chatml", Ollama's template name, ...)
	Template string // Ollama Go template; images are inserted by Ollama as [img-N] in .Content
	Stop     []string
}

// markerTemplates are recognised the way llama.cpp's llama_chat_apply_template recognises them:
// by a marker substring of the GGUF's Jinja template (tiny-models.md §2.2). The Go templates
// render the same text as llama.cpp's built-in formatter for that family. Order matters:
// smolvlm contains the chatml marker too.
var markerTemplates = []struct {
	markers []string
	tmpl    ChatTemplate
}{
	{[]string{"<|im_start|>", "<end_of_utterance>"}, ChatTemplate{
		Name: "smolvlm",
		Template: "<|im_start|>{{ range .Messages }}{{ if eq .Role \"system\" }}{{ .Content }}\n\n" +
			"{{ else if eq .Role \"user\" }}User: {{ .Content }}<end_of_utterance>\n" +
			"{{ else }}Assistant: {{ .Content }}<end_of_utterance>\n{{ end }}{{ end }}Assistant:",
		Stop: []string{"<end_of_utterance>"},
	}},
	{[]string{"<|im_start|>"}, ChatTemplate{
		Name: "chatml",
		Template: "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n" +
			"{{ end }}<|im_start|>assistant\n",
		Stop: []string{"<|im_start|>", "<|im_end|>"},
	}},
	{[]string{"<start_of_turn>"}, ChatTemplate{
		// llama.cpp's gemma format: a system message is prepended to the first user turn.
		Name: "gemma",
		Template: "{{ $sys := \"\" }}{{ range .Messages }}{{ if eq .Role \"system\" }}{{ $sys = .Content }}" +
			"{{ else if eq .Role \"user\" }}<start_of_turn>user\n{{ if $sys }}{{ $sys }}\n\n{{ $sys = \"\" }}{{ end }}{{ .Content }}<end_of_turn>\n" +
			"{{ else }}<start_of_turn>model\n{{ .Content }}<end_of_turn>\n{{ end }}{{ end }}<start_of_turn>model\n",
		Stop: []string{"<end_of_turn>"},
	}},
	{[]string{"<|start_header_id|>"}, ChatTemplate{
		Name: "llama3",
		Template: "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>" +
			"{{- end }}<|start_header_id|>assistant<|end_header_id|>\n\n",
		Stop: []string{"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"},
	}},
}

// ConvertChatTemplate turns a GGUF tokenizer.chat_template (Jinja) into an Ollama template. It
// recognises the families llama.cpp recognises by marker, then asks Ollama's own template library
// (the same nearest-match detection `ollama create` uses). ok is false when neither knows it; the
// Modelfile then carries no TEMPLATE and Ollama falls back to its own detection.
func ConvertChatTemplate(jinja string) (ChatTemplate, bool) {
	if strings.TrimSpace(jinja) == "" {
		return ChatTemplate{}, false
	}
	for _, m := range markerTemplates {
		all := true
		for _, s := range m.markers {
			all = all && strings.Contains(jinja, s)
		}
		if all {
			return m.tmpl, true
		}
	}
	named, err := template.Named(jinja)
	if err != nil {
		return ChatTemplate{}, false
	}
	ct := ChatTemplate{Name: named.Name, Template: string(named.Bytes)}
	if named.Parameters != nil {
		ct.Stop = named.Parameters.Stop
	}
	return ct, true
}
