// Package lora is vzlocal's LoRA adapter and gradient engine, CPU reference.
//
// Base weights are read from the user's GGUF (llama and qwen2 architectures) and dequantized to
// float32 with ggml's own to_float, so the engine computes with exactly the numbers llama.cpp
// dequantizes. The decoder is written llm.c style: each layer is a forward/backward pair over explicit
// row-major buffers (layers.go, attention.go), and forward.go strings them together; every matrix
// product goes through OpenBLAS sgemm.
//
// Batches. A Batch is a set of sequences (token ids, optional image-embedding rows from the mmproj,
// per-token positions, a completion mask). The engine packs the longest common prefix once, followed
// by each sequence's remainder: a GRPO group's prompt is computed once, every completion attends to
// the shared prompt's K/V, and in the backward the prompt's rows collect the gradient contributions of
// all G completions (TestSharedPromptMatchesSeparate checks this equals running each sequence alone).
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
