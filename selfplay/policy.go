package selfplay

import "context"

// Policy is what the game engine calls to get model outputs. Backends: the in-process llama.cpp
// engine (llm), the Ollama HTTP API, and the scripted reference player.
type Policy interface {
	// Complete answers a batch of requests; the result has one slice of len(req.N) completions
	// per request, in order.
	Complete(ctx context.Context, reqs []Request) ([][]Completion, error)
}

// Request is one prompt, sampled N times (N >= 1).
type Request struct {
	System string
	User   string // the user turn; the image goes where the backend's chat template puts it
	Image  string // path of the image the player sees ("" for none)
	N      int
	// Player identifies the caller for policies that route players differently (mixed games
	// in evaluation: candidate adapter vs reference); 0 is the observer.
	Player int
	Role   string // "civilian", "spy", "observer", "voter", "questioner", "solver"
	// Temperature and MaxTokens are the sampling settings of the stage that asks; zero means the
	// backend's default.
	Temperature float64
	MaxTokens   int
	// Truth gives the scripted policy what a real model would have to see for itself; model
	// backends ignore it.
	Truth any
}

// Completion is one sampled answer. Token-level fields are empty for backends that cannot give
// them (Ollama, scripted).
type Completion struct {
	Text         string
	PromptTokens []int32   // exact ids fed, image positions included as -1 (see ImageSpans)
	Tokens       []int32   // sampled ids
	LogProbs     []float32 // behaviour log-prob of each sampled id under the distribution sampled from
	Finish       string    // "stop" or "length"
	// EvalCount is the number of sampled tokens when the backend reports a count but no ids
	// (Ollama); backends that fill Tokens may leave it zero.
	EvalCount int
	// ImageSpans says where image embedding rows sit in PromptTokens, for the gradient engine.
	ImageSpans []ImageSpan
}

// ImageSpan is a run of image embedding rows inside a prompt.
type ImageSpan struct {
	Pos   int    // index in PromptTokens of the first row
	Rows  int    // number of embedding rows
	NX    int    // grid width and height of the rows (M-RoPE models place rows on a 2-D grid)
	NY    int    //
	Image string // path of the image, so the trainer can fetch the cached embeddings
}
