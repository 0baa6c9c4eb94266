package selfplay

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"sync"

	"github.com/vzlocal/vzlocal/llm"
)

// LlamaPolicy plays with the in-process llama.cpp engine: the user's GGUF model and mmproj with an
// optional LoRA adapter. Several LlamaPolicies may share one llm.Model with different adapters
// (candidate vs reference in evaluation, questioner vs solver): each call attaches its own
// adapter first, so one base model serves them all.
type LlamaPolicy struct {
	Model   *llm.Model
	Adapter *llm.Adapter // nil plays the base model
	// TopK and TopP apply to every call (0 = off); temperature and token limits come from the
	// request, else from Default.
	TopK    int
	TopP    float32
	Default llm.Sampling

	mu      sync.Mutex
	seed    uint64
	calls   uint64
	prompts map[string]*llm.Prompt
	owned   bool // Close also closes Model
}

// NewLlamaPolicy plays m with adapter a (nil = base). seed starts the sampling seeds; Reseed sets
// a new one per training step so a resumed run samples exactly what the uninterrupted run did.
func NewLlamaPolicy(m *llm.Model, a *llm.Adapter, seed uint64) *LlamaPolicy {
	return &LlamaPolicy{
		Model: m, Adapter: a,
		Default: llm.Sampling{Temperature: 0.8, MaxTokens: 256},
		seed:    seed, prompts: map[string]*llm.Prompt{},
	}
}

// OpenLlamaPolicy loads the model and projector and plays the base model; Close frees them.
func OpenLlamaPolicy(model, mmproj string, opts llm.Options) (*LlamaPolicy, error) {
	m, err := llm.Load(model, mmproj, opts)
	if err != nil {
		return nil, err
	}
	p := NewLlamaPolicy(m, nil, opts.Seed)
	p.owned = true
	return p, nil
}

// Close frees the model if the policy opened it.
func (p *LlamaPolicy) Close() error {
	if p.owned && p.Model != nil {
		return p.Model.Close()
	}
	return nil
}

// Reseed starts a new series of sampling seeds (one per request, in call order) and forgets the
// prompts tokenized so far.
func (p *LlamaPolicy) Reseed(seed uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seed, p.calls = seed, 0
	p.prompts = map[string]*llm.Prompt{}
}

// Complete samples every request with this policy's adapter attached. The requests of one call
// (a turn of every game in the batch) are decoded together.
func (p *LlamaPolicy) Complete(ctx context.Context, reqs []Request) ([][]Completion, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.Model.SetAdapter(p.Adapter, 1); err != nil {
		return nil, fmt.Errorf("llama policy: %w", err)
	}
	batch := make([]llm.Request, len(reqs))
	for i, r := range reqs {
		prompt, err := p.prompt(r)
		if err != nil {
			return nil, err
		}
		s := p.Default
		s.TopK, s.TopP = p.TopK, p.TopP
		s.Temperature = p.Temperature(r)
		if r.MaxTokens > 0 {
			s.MaxTokens = r.MaxTokens
		}
		s.N = max(r.N, 1)
		s.Seed = mixSeed(p.seed, p.calls)
		p.calls++
		batch[i] = llm.Request{Prompt: prompt, Sampling: s}
	}
	comps, err := p.Model.GenerateBatch(ctx, batch)
	if err != nil {
		return nil, fmt.Errorf("llama policy: %w", err)
	}
	out := make([][]Completion, len(reqs))
	for i, r := range reqs {
		prompt := batch[i].Prompt
		out[i] = make([]Completion, len(comps[i]))
		for j, c := range comps[i] {
			out[i][j] = Completion{
				Text: c.Text, PromptTokens: prompt.Tokens, Tokens: c.Tokens,
				LogProbs: c.LogProbs, Finish: c.Finish, ImageSpans: spansOf(prompt, r.Image),
			}
		}
	}
	return out, nil
}

// Temperature is the temperature Complete samples r at: the request's, else the policy's
// default. A trainer scores the completion at the same temperature.
func (p *LlamaPolicy) Temperature(r Request) float32 {
	if r.Temperature > 0 {
		return float32(r.Temperature)
	}
	return p.Default.Temperature
}

// Prompt returns the model input of a request exactly as Complete fed it (cached for the current
// step), so a trainer can rebuild a sample's sequence with its image embedding rows.
func (p *LlamaPolicy) Prompt(r Request) (*llm.Prompt, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.prompt(r)
}

func (p *LlamaPolicy) prompt(r Request) (*llm.Prompt, error) {
	key := r.System + "\x00" + r.User + "\x00" + r.Image
	if pr, ok := p.prompts[key]; ok {
		return pr, nil
	}
	var images [][]byte
	if r.Image != "" {
		b, err := os.ReadFile(r.Image)
		if err != nil {
			return nil, fmt.Errorf("llama policy: image: %w", err)
		}
		images = append(images, b)
	}
	pr, err := p.Model.ChatPrompt(r.System, r.User, images...)
	if err != nil {
		return nil, fmt.Errorf("llama policy: prompt with image %q: %w", r.Image, err)
	}
	p.prompts[key] = pr
	return pr, nil
}

func spansOf(p *llm.Prompt, image string) []ImageSpan {
	spans := make([]ImageSpan, len(p.Images))
	for i, s := range p.Images {
		spans[i] = ImageSpan{Pos: s.Index, Rows: s.Rows, NX: s.NX, NY: s.NY, Image: image}
	}
	return spans
}

// mixSeed derives the seed of one call from the step's seed and the call's index.
func mixSeed(seed, call uint64) uint64 {
	h := fnv.New64a()
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[i] = byte(seed >> (8 * i))
		b[8+i] = byte(call >> (8 * i))
	}
	h.Write(b[:])
	return h.Sum64() | 1 // llm treats 0 as "use the default seed"
}

var _ Policy = (*LlamaPolicy)(nil)
