package selfplay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/types/model"
)

// OllamaPolicy plays through a running Ollama server's chat API, sending the image bytes with each
// prompt. Ollama gives neither token ids nor exact behaviour log-probs of its sampler, so its
// completions carry text and a token count only: good for playing and evaluating, not for training.
type OllamaPolicy struct {
	client *api.Client
	host   string
	model  string
	// Parallel is how many chat requests are in flight at once (the server's OLLAMA_NUM_PARALLEL
	// decides how many it really runs together).
	Parallel int
	// Seed, when not zero, makes sampling reproducible: each chat gets Seed plus its number in the
	// order the chats were asked for (with the server's own determinism as the limit).
	Seed  int64
	calls atomic.Int64
}

var _ Policy = (*OllamaPolicy)(nil)

// DefaultOllamaHost is where `ollama serve` listens by default.
const DefaultOllamaHost = "http://127.0.0.1:11434"

// NewOllamaPolicy connects to the server at host ("" for the default) and checks that it runs and
// has the model, and that the model reads images.
func NewOllamaPolicy(ctx context.Context, host, modelName string, hc *http.Client) (*OllamaPolicy, error) {
	if host == "" {
		host = DefaultOllamaHost
	}
	if !strings.Contains(host, "://") {
		host = "http://" + host
	}
	u, err := url.Parse(host)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("ollama host %q: not a URL", host)
	}
	if modelName == "" {
		return nil, errors.New("ollama: no model name")
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	p := &OllamaPolicy{client: api.NewClient(u, hc), host: u.String(), model: modelName, Parallel: 4}
	show, err := p.client.Show(ctx, &api.ShowRequest{Model: modelName})
	if err != nil {
		return nil, p.explain(err)
	}
	if len(show.Capabilities) > 0 && !slices.Contains(show.Capabilities, model.CapabilityVision) {
		return nil, fmt.Errorf("ollama model %s at %s cannot read images (capabilities: %v); use a vision model", modelName, p.host, show.Capabilities)
	}
	return p, nil
}

// explain turns transport and status errors into what the user must do.
func (p *OllamaPolicy) explain(err error) error {
	var se api.StatusError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &se) && se.StatusCode == http.StatusNotFound:
		return fmt.Errorf("ollama server at %s has no model %q (run `ollama pull %s`): %w", p.host, p.model, p.model, err)
	case errors.As(err, &oe), errors.As(err, &ne):
		return fmt.Errorf("cannot reach an Ollama server at %s (is `ollama serve` running? --host sets the address): %w", p.host, err)
	}
	return fmt.Errorf("ollama %s at %s: %w", p.model, p.host, err)
}

// Complete sends one chat per sample, Parallel at a time.
func (p *OllamaPolicy) Complete(ctx context.Context, reqs []Request) ([][]Completion, error) {
	images := map[string][]byte{}
	for _, r := range reqs {
		if r.Image == "" || images[r.Image] != nil {
			continue
		}
		b, err := os.ReadFile(r.Image)
		if err != nil {
			return nil, fmt.Errorf("ollama policy: image %w", err)
		}
		images[r.Image] = b
	}
	out := make([][]Completion, len(reqs))
	type job struct{ i, k int }
	var jobs []job
	for i, r := range reqs {
		out[i] = make([]Completion, max(r.N, 1))
		for k := range out[i] {
			jobs = append(jobs, job{i, k})
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	sem := make(chan struct{}, max(p.Parallel, 1))
	// Seeds follow the job order, not the order the server finishes in.
	base := p.calls.Add(int64(len(jobs))) - int64(len(jobs))
	for n, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := p.chat(ctx, reqs[j.i], images[reqs[j.i].Image], base+int64(n)+1)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			out[j.i][j.k] = c
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

func (p *OllamaPolicy) chat(ctx context.Context, r Request, img []byte, call int64) (Completion, error) {
	var msgs []api.Message
	if r.System != "" {
		msgs = append(msgs, api.Message{Role: "system", Content: r.System})
	}
	user := api.Message{Role: "user", Content: r.User}
	if img != nil {
		user.Images = []api.ImageData{img}
	}
	msgs = append(msgs, user)
	opts := map[string]any{}
	if r.Temperature > 0 {
		opts["temperature"] = r.Temperature
	}
	if r.MaxTokens > 0 {
		opts["num_predict"] = r.MaxTokens
	}
	if p.Seed != 0 {
		opts["seed"] = p.Seed + call
	}
	stream := false
	var c Completion
	var content, thinking strings.Builder
	err := p.client.Chat(ctx, &api.ChatRequest{Model: p.model, Messages: msgs, Stream: &stream, Options: opts},
		func(resp api.ChatResponse) error {
			content.WriteString(resp.Message.Content)
			thinking.WriteString(resp.Message.Thinking)
			if resp.Done {
				c.Finish = resp.DoneReason
				c.EvalCount = resp.EvalCount
			}
			return nil
		})
	if err != nil {
		return Completion{}, p.explain(err)
	}
	// A thinking model's reasoning comes apart from its answer; put it back in front, where the
	// parsers look for the private reasoning.
	c.Text = content.String()
	if t := strings.TrimSpace(thinking.String()); t != "" {
		c.Text = t + "\n" + c.Text
	}
	return c, nil
}
