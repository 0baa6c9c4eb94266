// flash_emu_test.cc: runs csrc/flash.cuh's kernels on the CPU (cuda_emu.h) over packed batches and
// compares them with a double-precision reference of the same attention (the math of attention.cu
// and lora/attention.go: the shared prompt's keys, then causal own keys) on the same bf16 inputs.
// Built and run by TestFlashKernelsOnCPU (flash_emu_test.go); prints one line per case and exits
// non-zero when any comparison is out of tolerance.
//
// Tolerances: O and the gradients go through bf16 roundings of P and dS (8 mantissa bits, about
// 2e-3 relative each), so their relative error norms are held to 1e-2; the log-sum-exp is fp32
// arithmetic on the same inputs, held to 1e-4 absolute.
#include "cuda_emu.h"

#include "../csrc/flash.cuh"

#include <random>
#include <string>

namespace {

struct Seg {
  int r0, r1, p;
};

struct Err {
  double rel = 0, max = 0;
};

// compare: ||got - want|| / ||want|| and max |got - want|; a NaN (a row never written) fails.
Err compare(const std::vector<float> &got, const std::vector<double> &want) {
  double num = 0, den = 0, mx = 0;
  for (size_t i = 0; i < got.size(); i++) {
    double d = (double)got[i] - want[i];
    if (std::isnan(got[i])) d = INFINITY;
    num += d * d, den += want[i] * want[i], mx = std::max(mx, std::fabs(d));
  }
  return Err{std::sqrt(num / std::max(den, 1e-300)), mx};
}

// run_case checks the forward with W warps per block and the backward with (prefetch) or without
// the next query tile's loads in flight.
template <int HD, int W = 8>
int run_case(const std::string &name, int n_head, int n_head_kv, const std::vector<Seg> &segs, unsigned seed,
             bool prefetch = true) {
  using flash::bf16;
  const int n = segs.back().r1, G = n_head / n_head_kv, Q = n_head * HD, KV = n_head_kv * HD;
  const float scale = (float)(1.0 / std::sqrt((double)HD));
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.5f);
  auto make = [&](size_t count, std::vector<bf16> &b, std::vector<double> &f) {
    b.resize(count), f.resize(count);
    for (size_t i = 0; i < count; i++) b[i] = __float2bfloat16(nd(rng)), f[i] = __bfloat162float(b[i]);
  };
  std::vector<bf16> q, k, v, dO;
  std::vector<double> qf, kf, vf, dOf;
  make((size_t)n * Q, q, qf), make((size_t)n * KV, k, kf), make((size_t)n * KV, v, vf), make((size_t)n * Q, dO, dOf);

  // Reference, in double.
  std::vector<double> O((size_t)n * Q), lse((size_t)n_head * n), D((size_t)n_head * n);
  std::vector<double> dq((size_t)n * Q), dk((size_t)n * KV), dv((size_t)n * KV);
  for (const Seg &s : segs)
    for (int h = 0; h < n_head; h++)
      for (int i = 0; i < s.r1 - s.r0; i++) {
        int hk = h / G;
        size_t qo = (size_t)(s.r0 + i) * Q + (size_t)h * HD;
        std::vector<int> rows;
        for (int j = 0; j < s.p; j++) rows.push_back(j);
        for (int j = 0; j <= i; j++) rows.push_back(s.r0 + j);
        std::vector<double> sc(rows.size()), P(rows.size());
        double mx = -INFINITY, sum = 0;
        for (size_t j = 0; j < rows.size(); j++) {
          double d = 0;
          for (int c = 0; c < HD; c++) d += qf[qo + c] * kf[(size_t)rows[j] * KV + (size_t)hk * HD + c];
          sc[j] = scale * d, mx = std::max(mx, sc[j]);
        }
        for (size_t j = 0; j < rows.size(); j++) sum += std::exp(sc[j] - mx);
        lse[(size_t)h * n + s.r0 + i] = mx + std::log(sum);
        for (size_t j = 0; j < rows.size(); j++) {
          P[j] = std::exp(sc[j] - mx) / sum;
          for (int c = 0; c < HD; c++) O[qo + c] += P[j] * vf[(size_t)rows[j] * KV + (size_t)hk * HD + c];
        }
        double Dv = 0;
        for (int c = 0; c < HD; c++) Dv += dOf[qo + c] * O[qo + c];
        D[(size_t)h * n + s.r0 + i] = Dv;
        for (size_t j = 0; j < rows.size(); j++) {
          size_t ko = (size_t)rows[j] * KV + (size_t)hk * HD;
          double dP = 0;
          for (int c = 0; c < HD; c++) dP += dOf[qo + c] * vf[ko + c];
          double dS = P[j] * (dP - Dv);
          for (int c = 0; c < HD; c++) {
            dq[qo + c] += scale * dS * kf[ko + c];
            dk[ko + c] += scale * dS * qf[qo + c];
            dv[ko + c] += P[j] * dOf[qo + c];
          }
        }
      }

  // The kernels. o and lse start as NaN so that a row no block writes fails the comparison.
  std::vector<float> o((size_t)n * Q, NAN), ls((size_t)n_head * n, NAN), Df(D.begin(), D.end());
  std::vector<float> gq((size_t)n * Q, 0.f), gk((size_t)n * KV, 0.f), gv((size_t)n * KV, 0.f);
  for (const Seg &s : segs) {
    int m = s.r1 - s.r0;
    emu::launch(flash::fwd_grid(m, n_head, W), dim3(32 * W), flash::FwdSmem<HD>::fwd(W), flash::flash_fwd<HD, W>,
                (const bf16 *)q.data(), (const bf16 *)k.data(), (const bf16 *)v.data(), o.data(), ls.data(), n, Q, KV,
                G, s.r0, m, s.p, scale);
  }
  for (const Seg &s : segs) {
    int m = s.r1 - s.r0;
    auto kernel = prefetch ? flash::flash_bwd<HD, 1, true> : flash::flash_bwd<HD, 1, false>;
    emu::launch(flash::bwd_grid(m, s.p, n_head), dim3(flash::kThreads), prefetch ? flash::bwd_smem<HD, true>() : flash::bwd_smem<HD, false>(), kernel,
                (const bf16 *)q.data(), (const bf16 *)k.data(), (const bf16 *)v.data(), (const bf16 *)dO.data(),
                (const float *)ls.data(), (const float *)Df.data(), gq.data(), gk.data(), gv.data(), n, Q, KV, G, s.r0,
                m, s.p, scale);
  }
  struct {
    const char *what;
    Err e;
    double tol;
    bool abs;
  } checks[] = {
      {"O", compare(o, O), 1e-2, false},   {"lse", compare(ls, lse), 1e-4, true}, {"dQ", compare(gq, dq), 1e-2, false},
      {"dK", compare(gk, dk), 1e-2, false}, {"dV", compare(gv, dv), 1e-2, false},
  };
  int bad = 0;
  std::printf("%-30s", name.c_str());
  for (auto &c : checks) {
    double got = c.abs ? c.e.max : c.e.rel;
    bool ok = got <= c.tol;  // false for NaN
    bad += !ok;
    std::printf(" %s %s %.2e%s", c.what, c.abs ? "max" : "rel", got, ok ? "" : " FAIL");
  }
  std::printf("\n");
  return bad;
}

}  // namespace

int main() {
  int bad = 0;
  // A GRPO-shaped batch: the prompt once (crossing a tile edge), then completions that see it.
  bad += run_case<64>("hd64 gqa prompt+2", 4, 2, {{0, 70, 0}, {70, 107, 70}, {107, 207, 70}}, 1);
  // One long sequence over several query and key tiles, and a prompt of exactly one tile.
  bad += run_case<128>("hd128 gqa long+1", 2, 1, {{0, 130, 0}, {130, 150, 130}}, 2);
  bad += run_case<128>("hd128 mha prompt64+1", 2, 2, {{0, 64, 0}, {64, 129, 64}}, 3);
  // Sequences packed without a shared prompt (prefix 0 at row r0 > 0).
  bad += run_case<64>("hd64 gqa two seqs", 4, 1, {{0, 40, 0}, {40, 140, 0}}, 5);
  // Plain attention (G = 1) with a sequence shorter than one 16-row block.
  bad += run_case<64>("hd64 mha short", 2, 2, {{0, 5, 0}}, 4);
  // The forward with 4 warps (64 query rows) per block.
  bad += run_case<64, 4>("hd64 gqa prompt+2 (4 warps)", 4, 2, {{0, 70, 0}, {70, 107, 70}, {107, 207, 70}}, 6);
  bad += run_case<128, 4>("hd128 gqa long+1 (4 warps)", 2, 1, {{0, 130, 0}, {130, 150, 130}}, 7);
  // The backward's query tiles through both buffer pairs several times (5 tiles), and the backward
  // without the loads ahead.
  bad += run_case<64>("hd64 gqa long (5 query tiles)", 2, 1, {{0, 300, 0}}, 8);
  bad += run_case<64>("hd64 gqa prompt+2, no prefetch", 4, 2, {{0, 70, 0}, {70, 107, 70}, {107, 207, 70}}, 1, false);
  bad += run_case<128>("hd128 gqa long+1, no prefetch", 2, 1, {{0, 130, 0}, {130, 150, 130}}, 2, false);
  if (bad) std::printf("FAIL: %d comparisons out of tolerance\n", bad);
  else std::printf("ok\n");
  return bad ? 1 : 0;
}
