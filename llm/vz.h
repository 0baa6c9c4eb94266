// Small C helpers for package llm where the Go binding github.com/ollama/ollama/llama has no
// function: decoding cached image embeddings with the model's position layout, and writing LoRA
// adapter tensors in place. Everything else is called directly from Go.
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "llama.h"

#ifdef __cplusplus
extern "C" {
#endif

// vz_decode_embd decodes n_tokens rows of image embeddings (n_tokens*n_embd floats) into
// sequence seq_id starting at position pos0, exactly as mtmd_helper_decode_image_chunk does:
// M-RoPE models get the 2-D grid positions (t = pos0, y = pos0 + row, x = pos0 + col), other
// models consecutive positions; non_causal switches the context to non-causal attention for the
// image (gemma3). Returns llama_decode's code of the first failing batch, or 0.
int32_t vz_decode_embd(struct llama_context * lctx, const float * embd, int32_t n_tokens, int32_t n_embd,
                       int32_t pos0, int32_t nx, int32_t ny, bool mrope, bool non_causal,
                       int32_t seq_id, int32_t n_batch);

// vz_adapter_tensor finds the A (which == 'a') or B (which == 'b') matrix of the adapter entry
// for base tensor `base` and reports its shape (ggml ne order) and ggml type. Returns NULL if the
// adapter has no such entry.
void * vz_adapter_tensor(struct llama_adapter_lora * adapter, const char * base, char which,
                         int64_t * ne0, int64_t * ne1, int32_t * type);

// vz_tensor_set_f32 converts n floats to the tensor's type (F32, F16 or BF16) and copies them into
// the tensor's backend buffer. Returns 0, or -1 if n or the type does not fit.
int32_t vz_tensor_set_f32(void * tensor, const float * data, int64_t n);

// vz_tensor_get_f32 reads a tensor (F32, F16 or BF16) back as n floats. Returns 0 or -1.
int32_t vz_tensor_get_f32(void * tensor, float * out, int64_t n);

#ifdef __cplusplus
}
#endif

#ifdef __cplusplus
extern "C" {
#endif

// vz_exp_sum sets y[i] = exp(x[i]*inv_t - max) for n floats, max being the largest x[i]*inv_t,
// and returns their sum, with ggml's SIMD exp (ggml_vec_soft_max_f32 of the CPU backend): the
// sampler's hot loop over the vocabulary.
double vz_exp_sum(int32_t n, float * y, const float * x, float inv_t);

#ifdef __cplusplus
}
#endif
