#!/usr/bin/env python3
"""PyTorch + PEFT twin of bench/cuda_bench_test.go (BenchmarkCUDABackward), for the GPU machine.

Same model dimensions (Qwen2.5 0.5B/3B/7B, random weights), same LoRA (rank 16, alpha 32, dropout
0, on q/k/v/o/gate/up/down; PEFT keeps the adapter in fp32 like our engine), bf16 base weights,
sdpa attention, the same loss (sum_t w_t log p(token_t), log-softmax in fp32) and the same
workloads: one scored sequence of 1024 or 4096 tokens, and a GRPO group of 8 completions of 512
tokens after a 1,024-token prompt (PEFT runs the group as a batch of 8 full sequences: it has no
shared-prompt layout). Gradient checkpointing on (like our engine's per-layer recomputation) and
off. Timing: CUDA synchronize around each step, median of --reps after a warm-up step. Memory:
torch.cuda.max_memory_allocated over the warm-up and timed steps (weights included).

    python3 bench/peft_bench.py --sizes qwen2.5-0.5b,qwen2.5-3b,qwen2.5-7b

MFU uses the Go benchmark's count: 4 x matrix parameters (head included) x computed tokens, plus 3 x
the causal attention forward (4 x n_head x head_dim per visible query-key pair), per layer; the
recomputed forward is not counted. Peak: 989.4 TFLOP/s (H100/H200 SXM bf16 dense) or --peak-tflops.
"""
import argparse
import json
import statistics
import sys
import time

import torch

SIZES = {
    # layers, hidden, heads, kv heads, ffn, vocab, tied
    "qwen2.5-0.5b": (24, 896, 14, 2, 4864, 151936, True),
    "qwen2.5-3b": (36, 2048, 16, 2, 11008, 151936, True),
    "qwen2.5-7b": (28, 3584, 28, 4, 18944, 152064, False),
}
WORKLOADS = {"seq=1024": ("seq", 1024), "seq=4096": ("seq", 4096), "group=8x512+1024": ("group", (8, 1024, 512))}
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def build(size, checkpointing):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Qwen2Config

    L, E, H, KV, F, V, tied = SIZES[size]
    cfg = Qwen2Config(num_hidden_layers=L, hidden_size=E, num_attention_heads=H, num_key_value_heads=KV,
                      intermediate_size=F, vocab_size=V, tie_word_embeddings=tied, rope_theta=1e6,
                      rms_norm_eps=1e-6, max_position_embeddings=32768, use_cache=False)
    torch.manual_seed(0)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # create the weights in bf16 directly, on the GPU
    try:
        with torch.device("cuda"):
            try:
                model = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa", dtype=torch.bfloat16)
            except TypeError:  # transformers < 4.56 names it torch_dtype
                model = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa", torch_dtype=torch.bfloat16)
    finally:
        torch.set_default_dtype(prev)
    lcfg = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=TARGETS, bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(model, lcfg)
    for n, p in model.named_parameters():
        if "lora_B" in n:
            torch.nn.init.constant_(p, 0.01)  # as the Go benchmark: every LoRA term does work
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    return model, cfg


def workload(kind, arg, vocab, device="cuda"):
    g = torch.Generator(device="cpu").manual_seed(3)
    if kind == "seq":
        n = arg
        ids = torch.randint(0, vocab, (1, n), generator=g)
        w = torch.randn(1, n, generator=g)
        w[:, 0] = 0
        return ids.to(device), w.to(device), n, [(n, 0)]
    G, P, C = arg
    prompt = torch.randint(0, vocab, (P,), generator=g)
    ids = torch.stack([torch.cat([prompt, torch.randint(0, vocab, (C,), generator=g)]) for _ in range(G)])
    w = torch.zeros(G, P + C)
    w[:, P:] = torch.randn(G, C, generator=g)
    return ids.to(device), w.to(device), G * (P + C), [(P + C, 0)] * G


def step(model, ids, w):
    logits = model(input_ids=ids, use_cache=False).logits[:, :-1]
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    loss = (w[:, 1:] * logp).sum()
    loss.backward()
    return loss.item()


def model_flops(cfg, tokens, segs):
    L, E, H, KV, F, V, _ = cfg
    hd = E // H
    q, kv = H * hd, KV * hd
    params = L * (E * (q + 2 * kv) + q * E + 3 * E * F) + V * E
    pairs = sum(m * p + m * (m + 1) / 2 for m, p in segs)
    return 4 * params * tokens + 3 * 4 * H * hd * pairs * L


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--checkpointing", choices=["on", "off", "both"], default="both")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--peak-tflops", type=float, default=0)
    args = ap.parse_args()
    dev = torch.cuda.get_device_name(0)
    peak = args.peak_tflops * 1e12 or (989.4e12 if ("H100" in dev or "H200" in dev) else 0)
    import peft
    import transformers
    print(f"# {dev}; torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}", flush=True)
    rows = []
    modes = {"on": [True], "off": [False], "both": [True, False]}[args.checkpointing]
    for size in args.sizes.split(","):
        for ckpt in modes:
            model, _ = build(size, ckpt)
            for wl in args.workloads.split(","):
                kind, arg = WORKLOADS[wl]
                ids, w, tokens, segs = workload(kind, arg, SIZES[size][5])
                row = {"engine": "peft", "size": size, "workload": wl, "checkpointing": ckpt, "tokens": tokens}
                try:
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    model.zero_grad(set_to_none=True)
                    step(model, ids, w)  # warm-up
                    times = []
                    for _ in range(args.reps):
                        model.zero_grad(set_to_none=True)
                        torch.cuda.synchronize()
                        t0 = time.perf_counter()
                        step(model, ids, w)
                        torch.cuda.synchronize()
                        times.append(time.perf_counter() - t0)
                    sec = statistics.median(times)
                    fl = model_flops(SIZES[size], tokens, segs)
                    row.update(step_s=sec, tokens_per_s=tokens / sec, tflops=fl / sec / 1e12,
                               mfu_pct=100 * fl / sec / peak if peak else None,
                               peak_gib=torch.cuda.max_memory_allocated() / 2**30)
                except torch.cuda.OutOfMemoryError:
                    row.update(error="out of memory")
                    torch.cuda.empty_cache()
                print(json.dumps(row), flush=True)
                rows.append(row)
                del ids, w
                model.zero_grad(set_to_none=True)
            del model
            torch.cuda.empty_cache()
    print("\n| size | workload | ckpt | step s | tokens/s | TFLOP/s | MFU % | peak GiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['size']} | {r['workload']} | {r['checkpointing']} | {r['error']} | | | | |")
            continue
        mfu = f"{r['mfu_pct']:.1f}" if r["mfu_pct"] is not None else "-"
        print(f"| {r['size']} | {r['workload']} | {r['checkpointing']} | {r['step_s']:.3f} | {r['tokens_per_s']:.0f} | "
              f"{r['tflops']:.1f} | {mfu} | {r['peak_gib']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
