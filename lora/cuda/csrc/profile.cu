// profile.cu: phase timing of a pass (run.cu) for VZLOCAL_CUDA_PROFILE=1 (see Profile in internal.cuh).
#include <chrono>
#include <cstdio>

#include "internal.cuh"

namespace {
double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
const char *phase_name[P_NPHASE] = {"upload",   "fwd_attn", "fwd_lin",  "fwd_other", "head",
                                    "bwd_attn", "bwd_lin",  "bwd_other", "download"};
}  // namespace

void prof_start(vz_engine *e) {
  if (!e->prof.on) return;
  cudaStreamSynchronize(e->stream);
  for (double &m : e->prof.ms) m = 0;
  e->prof.last = now_ms();
}

void prof_mark(vz_engine *e, ProfPhase p) {
  if (!e->prof.on) return;
  cudaStreamSynchronize(e->stream);
  double t = now_ms();
  e->prof.ms[p] += t - e->prof.last;
  e->prof.last = t;
}

void prof_report(vz_engine *e, int n_rows) {
  if (!e->prof.on) return;
  double total = 0;
  for (double m : e->prof.ms) total += m;
  fprintf(stderr, "vz_run profile: rows %d total %.1f ms:", n_rows, total);
  for (int p = 0; p < P_NPHASE; p++) fprintf(stderr, " %s %.1f", phase_name[p], e->prof.ms[p]);
  fprintf(stderr, "\n");
}
