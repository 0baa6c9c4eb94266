// Package llm is vzlocal's rollout engine: it loads a GGUF vision-language model through llama.cpp
// (the cgo binding github.com/ollama/ollama/llama plus a few helpers of our own in vz.cpp),
// formats chat prompts with the model's own template, places images where the model expects them,
// samples batches of completions with exact behaviour log-probs, scores given token sequences, and
// swaps LoRA adapters after every training step.
//
//	Load(model, mmproj, Options)            validate the files in Go, then load model, context, projector
//	ChatPrompt / FormatChat + Tokenize      model input: token ids, ImageRow at image rows, ImageSpans
//	                                        carrying the cached projector rows (and their grid)
//	Generate(ctx, prompt, Sampling)         N completions of one prompt, decoded in parallel
//	GenerateBatch(ctx, []Request)           completions of several prompts, decoded together
//	Score(ctx, prompt, tokens, Sampling)    log-probs of given completions; Logits for parity tests
//	LoadAdapter / SetAdapter / SwapAdapter  LoRA adapters from GGUF files; Adapter.Update rewrites
//	                                        one in place; SetAdapter(nil, 0) is the base model
//
// Every input file is checked in pure Go before llama.cpp sees it, because llama.cpp aborts the
// process on several kinds of bad input (FileError names the file and the problem). The context
// never reuses compute graphs (LLAMA_GRAPH_REUSE_DISABLE=1), because llama.cpp would otherwise
// silently ignore adapter changes made after the first decode. llama.cpp's own log goes to zerolog
// at debug level.
package llm
