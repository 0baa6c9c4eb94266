package selfplay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/ollama/ollama/api"
)

// fakeOllama mimics /api/show and /api/chat of an Ollama server that has the models listed.
type fakeOllama struct {
	models map[string][]string // name -> capabilities
	mu     sync.Mutex
	chats  []api.ChatRequest
	reply  func(req api.ChatRequest) api.ChatResponse
}

func (f *fakeOllama) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/show":
		var req api.ShowRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		caps, ok := f.models[req.Model]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":"model '%s' not found"}`, req.Model)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"capabilities": caps, "model_info": map[string]any{}})
	case "/api/chat":
		var req api.ChatRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		if _, ok := f.models[req.Model]; !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":"model '%s' not found"}`, req.Model)
			return
		}
		f.mu.Lock()
		f.chats = append(f.chats, req)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(f.reply(req))
	default:
		http.NotFound(w, r)
	}
}

func TestOllamaPolicyPlaysAGame(t *testing.T) {
	pairs := spyTestPairs(t, 1)
	origBytes, err := os.ReadFile(pairs[0].OriginalPath())
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeOllama{models: map[string][]string{"qwen2.5vl:3b": {"completion", "vision"}}}
	fake.reply = func(req api.ChatRequest) api.ChatResponse {
		user := req.Messages[len(req.Messages)-1].Content
		// Reasoning that names the speaker and round, so visibility can be checked.
		first, _, _ := strings.Cut(user, "\n")
		text := "My picture shows cubes. " + first + ` \boxed{There is a red cube.}`
		if strings.Contains(user, "judge") {
			text = `Player 2 contradicted my picture. \boxed{2}`
		}
		return api.ChatResponse{Model: req.Model, Message: api.Message{Role: "assistant", Content: text, Thinking: "thinking..."},
			Done: true, DoneReason: "stop", Metrics: api.Metrics{EvalCount: 12}}
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	ctx := context.Background()
	pol, err := NewOllamaPolicy(ctx, srv.URL, "qwen2.5vl:3b", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	e := spyTestEngine(t, nil)
	games, stats, err := e.Play(ctx, pol, pairs, 0)
	if err != nil {
		t.Fatal(err)
	}
	g := games[0]
	if err := g.Score(e.Settings, NewSpyRAE(0.9)); err != nil {
		t.Fatal(err)
	}
	checkSpyRules(t, g)
	if len(fake.chats) != 2*4+8 {
		t.Errorf("%d chats, want %d (8 clues, 8 observer samples)", len(fake.chats), 2*4+8)
	}
	for _, c := range fake.chats {
		if len(c.Messages) != 2 || c.Messages[0].Role != "system" || c.Messages[1].Role != "user" {
			t.Fatalf("chat messages %+v, want system then user", c.Messages)
		}
		if len(c.Messages[1].Images) != 1 {
			t.Fatalf("chat carries %d images, want 1", len(c.Messages[1].Images))
		}
		if c.Options["temperature"] != 0.8 || c.Options["num_predict"] != float64(1024) {
			t.Errorf("options %v, want temperature 0.8 and num_predict 1024", c.Options)
		}
		if c.Stream == nil || *c.Stream {
			t.Error("chat is streamed")
		}
	}
	// The observer sees the original image.
	if !bytes.Equal(fake.chats[len(fake.chats)-1].Messages[1].Images[0], origBytes) {
		t.Error("observer chat does not carry the original image's bytes")
	}
	x := g.Samples[0]
	if x.Clue != "There is a red cube." || x.EvalCount != 12 || x.Finish != "stop" || !strings.HasPrefix(x.Text, "thinking...") {
		t.Errorf("first sample %+v", x)
	}
	if stats.Tokens != 16*12 {
		t.Errorf("rollout tokens %d, want %d", stats.Tokens, 16*12)
	}
	if v := g.Samples[len(g.Samples)-1].Vote; v == nil || v.Kind != VotePlayer || v.Player != 2 {
		t.Errorf("observer vote %+v, want player 2", v)
	}
}

func TestOllamaPolicyErrors(t *testing.T) {
	fake := &fakeOllama{models: map[string][]string{"llava": {"completion", "vision"}, "llama3": {"completion"}}}
	srv := httptest.NewServer(fake)
	ctx := context.Background()
	tests := []struct {
		host, model, want string
	}{
		{srv.URL, "missing:7b", "has no model \"missing:7b\" (run `ollama pull missing:7b`)"},
		{srv.URL, "llama3", "cannot read images"},
		{"://bad", "llava", "not a URL"},
		{srv.URL, "", "no model name"},
	}
	for _, tt := range tests {
		if _, err := NewOllamaPolicy(ctx, tt.host, tt.model, srv.Client()); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("host %s model %q: err = %v, want %q", tt.host, tt.model, err, tt.want)
		}
	}
	pol, err := NewOllamaPolicy(ctx, srv.URL, "llava", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pol.Complete(ctx, []Request{{User: "hi", Image: "/nonexistent/x.png", N: 1}}); err == nil || !strings.Contains(err.Error(), "/nonexistent/x.png") {
		t.Errorf("missing image: err = %v", err)
	}
	// A server that goes away: the address no longer answers.
	url := srv.URL
	srv.Close()
	if _, err := NewOllamaPolicy(ctx, url, "llava", nil); err == nil || !strings.Contains(err.Error(), "cannot reach an Ollama server") {
		t.Errorf("server down: err = %v", err)
	}
	if _, err := pol.Complete(ctx, []Request{{User: "hi", N: 2}}); err == nil || !strings.Contains(err.Error(), "cannot reach an Ollama server") {
		t.Errorf("server down during play: err = %v", err)
	}
}
