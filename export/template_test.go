package export

import (
	"strings"
	"testing"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/template"
)

// render runs a converted template the way Ollama's generate/chat handlers do.
func render(t *testing.T, tmpl string, msgs []api.Message) string {
	t.Helper()
	tp, err := template.Parse(tmpl)
	if err != nil {
		t.Fatalf("Ollama cannot parse the template: %v", err)
	}
	var b strings.Builder
	if err := tp.Execute(&b, template.Values{Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The expected strings are llama.cpp's llama_chat_apply_template output for the same messages
// (tiny-models.md §2.2), with <__media__> replaced by Ollama's [img-0] tag.
func TestConvertChatTemplateMatchesLlamaCpp(t *testing.T) {
	msgs := []api.Message{{Role: "system", Content: "You are a spy."}, {Role: "user", Content: "[img-0]\nDescribe the image."}}
	for _, tc := range []struct {
		jinja, name, want string
	}{
		{"{% for message in messages %}{{ '<|im_start|>' + message['role'] }}{% endfor %}", "chatml",
			"<|im_start|>system\nYou are a spy.<|im_end|>\n<|im_start|>user\n[img-0]\nDescribe the image.<|im_end|>\n<|im_start|>assistant\n"},
		{"<|im_start|>{% for m in messages %}{{ m['content'] }}<end_of_utterance>{% endfor %}", "smolvlm",
			"<|im_start|>You are a spy.\n\nUser: [img-0]\nDescribe the image.<end_of_utterance>\nAssistant:"},
		{"{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}{% endfor %}", "gemma",
			"<start_of_turn>user\nYou are a spy.\n\n[img-0]\nDescribe the image.<end_of_turn>\n<start_of_turn>model\n"},
	} {
		ct, ok := ConvertChatTemplate(tc.jinja)
		if !ok || ct.Name != tc.name {
			t.Fatalf("%s: recognised as %q (ok=%v)", tc.name, ct.Name, ok)
		}
		if got := render(t, ct.Template, msgs); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
		if len(ct.Stop) == 0 {
			t.Errorf("%s: no stop words", tc.name)
		}
	}
}

func TestConvertChatTemplateUnknown(t *testing.T) {
	if _, ok := ConvertChatTemplate(""); ok {
		t.Error("empty template recognised")
	}
	if ct, ok := ConvertChatTemplate(strings.Repeat("x", 500)); ok {
		t.Errorf("noise recognised as %s", ct.Name)
	}
}
