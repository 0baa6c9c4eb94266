// Package lora is vzlocal's LoRA adapter and gradient engine, CPU reference.
//
// Base weights are read from the user's GGUF (architectures llama, qwen2, qwen2vl, qwen3 and
// gemma3: SupportedArchitectures) and dequantized to float32 with ggml's own to_float, so the
// engine computes with exactly the numbers llama.cpp dequantizes. The decoder is written llm.c
// style: each layer is a forward/backward pair over explicit row-major buffers (layers.go,
// attention.go), block.go makes a decoder block of them (its buffers in buffers.go) and forward.go
// strings the blocks together; every matrix product goes through OpenBLAS sgemm.
//
// Batches. A Batch is a set of sequences (token ids, optional image-embedding rows from the mmproj,
// per-token positions, a completion mask). The engine packs the longest common prefix once, followed
// by each sequence's remainder: a GRPO group's prompt is computed once, every completion attends to
// the shared prompt's K/V, and in the backward the prompt's rows collect the gradient contributions of
// all G completions (TestSharedPromptMatchesSeparate checks this equals running each sequence alone).
//
// Vision-language families. Image rows are mmproj embeddings placed at their token indices
// (EmbedSpan), with the positions llama.cpp gives them: qwen2vl rotates with M-RoPE, each rotary
// pair taking its angle from the t, h or w component of Sequence.Positions4 as rope.dimension_sections
// say (image row r of an nx-wide grid at p is {p, p + r/nx, p + r%nx, 0}, text after the image
// resumes at p + max(nx, ny)); gemma3's image rows attend to each other both ways
// (EmbedSpan.NonCausal), and its sliding-window layers mask keys by position and rotate with their
// own RoPE base (Config.Gemma). The tiny models of llm/testmodel check all of it against llama.cpp
// (family_test.go, family_norms_test.go).
//
// Loss and sign. Backward differentiates loss = sum_t w_t * log p(token_t | tokens < t) over the scored
// tokens: d(loss)/d(logp_t) = w_t, with w_t supplied by the trainer (optim). The vocabulary
// projection and log-softmax run in chunks of Options.HeadChunk rows, and only for rows that score a
// token, so a 150k vocabulary never materializes a [tokens x vocab] matrix.
//
// Formats. Adapters are written and read in llama.cpp's GGUF LoRA format (adapter_gguf.go) and as
// PEFT adapter_model.safetensors + adapter_config.json (peft.go; q/k rows of the llama arch are
// un-permuted on export, permuted on import).
//
// Tests: forward parity with llama.cpp (with and without our adapter file), central finite
// differences on every LoRA matrix, bit-exact dequantization against ggml, format round trips and
// bad input. Benchmarks live in ../bench (lora_bench_test.go).
package lora
