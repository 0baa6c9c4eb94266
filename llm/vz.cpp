#include "vz.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "ggml.h"
#include "llama-adapter.h"

int32_t vz_decode_embd(struct llama_context * lctx, const float * embd, int32_t n_tokens, int32_t n_embd,
                       int32_t pos0, int32_t nx, int32_t ny, bool mrope, bool non_causal,
                       int32_t seq_id, int32_t n_batch) {
    const int n_pos_per_embd = mrope ? 4 : 1;
    if (mrope && (int64_t) nx * ny != n_tokens) {
        return -100;
    }
    // Positions laid out section by section (t..., y..., x..., e...), as llama_batch expects
    // for embedding batches of M-RoPE models.
    std::vector<llama_pos> pos((size_t) n_tokens * n_pos_per_embd);
    for (int32_t i = 0; i < n_tokens; i++) {
        if (mrope) {
            pos[i]                = pos0;
            pos[i + n_tokens]     = pos0 + i / nx;
            pos[i + 2 * n_tokens] = pos0 + i % nx;
            pos[i + 3 * n_tokens] = 0;
        } else {
            pos[i] = pos0 + i;
        }
    }
    llama_seq_id seq = seq_id;
    std::vector<int32_t> n_seq_id(n_tokens, 1);
    std::vector<llama_seq_id *> seq_ids(n_tokens, &seq);
    std::vector<int8_t> logits(n_tokens, 0);
    std::vector<llama_pos> view;

    if (non_causal) {
        llama_set_causal_attn(lctx, false);
    }
    int32_t ret = 0;
    for (int32_t off = 0; off < n_tokens && ret == 0; off += n_batch) {
        const int32_t n = std::min(n_batch, n_tokens - off);
        view.clear();
        for (int j = 0; j < n_pos_per_embd; j++) {
            const llama_pos * src = pos.data() + (size_t) j * n_tokens + off;
            view.insert(view.end(), src, src + n);
        }
        llama_batch b = {
            /*n_tokens =*/ n,
            /*token    =*/ nullptr,
            /*embd     =*/ const_cast<float *>(embd) + (size_t) off * n_embd,
            /*pos      =*/ view.data(),
            /*n_seq_id =*/ n_seq_id.data() + off,
            /*seq_id   =*/ seq_ids.data() + off,
            /*logits   =*/ logits.data() + off,
        };
        ret = llama_decode(lctx, b);
    }
    if (non_causal) {
        llama_set_causal_attn(lctx, true);
    }
    return ret;
}

void * vz_adapter_tensor(struct llama_adapter_lora * adapter, const char * base, char which,
                         int64_t * ne0, int64_t * ne1, int32_t * type) {
    auto it = adapter->ab_map.find(std::string(base));
    if (it == adapter->ab_map.end()) {
        return nullptr;
    }
    ggml_tensor * t = which == 'a' ? it->second.a : it->second.b;
    if (t == nullptr) {
        return nullptr;
    }
    *ne0  = t->ne[0];
    *ne1  = t->ne[1];
    *type = (int32_t) t->type;
    return t;
}

int32_t vz_tensor_set_f32(void * tensor, const float * data, int64_t n) {
    auto * t = (ggml_tensor *) tensor;
    if (ggml_nelements(t) != n) {
        return -1;
    }
    switch (t->type) {
        case GGML_TYPE_F32:
            ggml_backend_tensor_set(t, data, 0, n * sizeof(float));
            return 0;
        case GGML_TYPE_F16: {
            std::vector<ggml_fp16_t> buf(n);
            ggml_fp32_to_fp16_row(data, buf.data(), n);
            ggml_backend_tensor_set(t, buf.data(), 0, n * sizeof(ggml_fp16_t));
            return 0;
        }
        case GGML_TYPE_BF16: {
            std::vector<ggml_bf16_t> buf(n);
            ggml_fp32_to_bf16_row_ref(data, buf.data(), n);
            ggml_backend_tensor_set(t, buf.data(), 0, n * sizeof(ggml_bf16_t));
            return 0;
        }
        default:
            return -1;
    }
}

int32_t vz_tensor_get_f32(void * tensor, float * out, int64_t n) {
    auto * t = (ggml_tensor *) tensor;
    if (ggml_nelements(t) != n) {
        return -1;
    }
    switch (t->type) {
        case GGML_TYPE_F32:
            ggml_backend_tensor_get(t, out, 0, n * sizeof(float));
            return 0;
        case GGML_TYPE_F16: {
            std::vector<ggml_fp16_t> buf(n);
            ggml_backend_tensor_get(t, buf.data(), 0, n * sizeof(ggml_fp16_t));
            ggml_fp16_to_fp32_row(buf.data(), out, n);
            return 0;
        }
        case GGML_TYPE_BF16: {
            std::vector<ggml_bf16_t> buf(n);
            ggml_backend_tensor_get(t, buf.data(), 0, n * sizeof(ggml_bf16_t));
            ggml_bf16_to_fp32_row(buf.data(), out, n);
            return 0;
        }
        default:
            return -1;
    }
}

// From ggml-cpu/vec.h (C linkage; the CPU backend is linked into every binary that uses llama).
extern "C" double ggml_vec_soft_max_f32(const int n, float * y, const float * x, float max);

double vz_exp_sum(int32_t n, float * y, const float * x, float inv_t) {
    float mx = -INFINITY;
    for (int32_t i = 0; i < n; i++) {
        y[i] = x[i] * inv_t;
        mx = std::max(mx, y[i]);
    }
    return ggml_vec_soft_max_f32(n, y, y, mx); // reads y[i] before writing it: in place is fine
}

// Backends outlive their scheduler. Ollama's ggml patch makes ggml_backend_sched_free read each
// backend's iface.reset, but llama_context (member order) and mtmd's clip_ctx (destructor body)
// free their backends before their scheduler, so that read hits freed memory: usually still
// intact (NULL for the CPU backend), but CI once crashed there when the page had been unmapped,
// and with glibc.malloc.perturb every llama_free crashes. The link wraps both functions
// (-Wl,--wrap, see devices.go): a backend freed by llama.cpp/mtmd code waits, per thread, until
// the next scheduler free on that thread has run, which both destructors do right after.
extern "C" {
void __real_ggml_backend_free(ggml_backend_t backend);
void __real_ggml_backend_sched_free(ggml_backend_sched_t sched);

static thread_local std::vector<ggml_backend_t> vz_backends_to_free;

void __wrap_ggml_backend_free(ggml_backend_t backend) {
    if (backend != nullptr) {
        vz_backends_to_free.push_back(backend);
    }
}

void __wrap_ggml_backend_sched_free(ggml_backend_sched_t sched) {
    __real_ggml_backend_sched_free(sched);
    std::vector<ggml_backend_t> pending;
    pending.swap(vz_backends_to_free);
    for (ggml_backend_t b : pending) {
        __real_ggml_backend_free(b);
    }
}
}
