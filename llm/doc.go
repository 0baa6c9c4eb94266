// Package llm is vzlocal's rollout engine: it loads a GGUF vision-language model through llama.cpp
// (the cgo binding github.com/ollama/ollama/llama plus a few helpers of our own in vz.cpp),
// formats chat prompts with the model's own template, places images where the model expects them,
// samples batches of completions with exact behaviour log-probs, scores given token sequences, and
// swaps LoRA adapters after every training step.
//
// Every input file is checked in pure Go before llama.cpp sees it, because llama.cpp aborts the
// process on several kinds of bad input.
package llm
