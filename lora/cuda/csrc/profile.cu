// profile.cu: timing of a pass (run.cu) for VZLOCAL_CUDA_PROFILE=1 (phases) and 2 (operations);
// see Profile in internal.cuh.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <tuple>

#include "internal.cuh"

namespace {
double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
const char *phase_name[P_NPHASE] = {"upload",   "fwd_attn", "fwd_lin",  "fwd_other", "head",
                                    "bwd_attn", "bwd_lin",  "bwd_other", "download"};

constexpr int kStart = -2, kMark = -1;  // ProfOp::name of a stream's opening event and of a phase mark

// record appends an operation and records its event (grown from the pool) on its stream. A
// failure here only loses the profile: the pass itself goes on, and the report says so.
void record(vz_engine *e, int name, ProfPhase phase, double flops, cudaStream_t stream) {
  Profile &p = e->prof;
  const size_t i = p.ops.size();
  if (i == p.events.size()) {
    cudaEvent_t ev;
    if (cudaEventCreateWithFlags(&ev, 0) != cudaSuccess) return;
    p.events.push_back(ev);
  }
  if (cudaEventRecord(p.events[i], stream) != cudaSuccess) return;
  p.ops.push_back(ProfOp{stream, name, phase, flops});
}

// report_ops prints level 2's table: per phase (the main stream's operations belong to the phase
// of the next mark; the other streams' are listed under their stream) and operation name, the
// count, the time and its share of the main stream's total, and for GEMMs the rate.
void report_ops(vz_engine *e, int n_rows) {
  Profile &p = e->prof;
  const int n = (int)p.ops.size();
  // Each operation's time is the gap since the previous event on its stream; the first event on
  // each stream is prof_start's, which only opens the chain.
  std::map<cudaStream_t, int> prev;
  std::vector<float> ms(n, 0.f);
  for (int i = 0; i < n; i++) {
    auto it = prev.find(p.ops[i].stream);
    if (it != prev.end() && cudaEventElapsedTime(&ms[i], p.events[it->second], p.events[i]) != cudaSuccess) ms[i] = 0;
    prev[p.ops[i].stream] = i;
  }
  std::vector<int> phase(n, -1);
  for (int i = n - 1, cur = P_DOWNLOAD; i >= 0; i--) {
    if (p.ops[i].name == kMark) cur = p.ops[i].phase;
    phase[i] = cur;
  }
  struct Sum {
    int count = 0;
    double ms = 0, flops = 0;
  };
  // key: (stream label, phase, name); the main stream first
  std::map<std::tuple<std::string, int, int>, Sum> sums;
  double total = 0, phase_ms[P_NPHASE] = {};
  for (int i = 0; i < n; i++) {
    const ProfOp &op = p.ops[i];
    if (op.name == kStart) continue;
    const bool main = op.stream == e->stream;
    if (main) {
      total += ms[i];
      phase_ms[phase[i]] += ms[i];
    }
    const std::string where = main ? "" : op.stream == e->deq_stream ? "dequant stream" : "copy stream";
    Sum &s = sums[{where, main ? phase[i] : -1, op.name}];
    s.count++;
    s.ms += ms[i];
    s.flops += op.flops;
  }
  fprintf(stderr, "vz_run operations: rows %d, compute stream %.1f ms (%d events):", n_rows, total, n);
  for (int q = 0; q < P_NPHASE; q++) fprintf(stderr, " %s %.1f", phase_name[q], phase_ms[q]);
  fprintf(stderr, "\n");
  std::vector<std::pair<const std::tuple<std::string, int, int>, Sum> *> rows;
  for (auto &kv : sums) rows.push_back(&kv);
  std::sort(rows.begin(), rows.end(), [](auto *a, auto *b) { return a->second.ms > b->second.ms; });
  fprintf(stderr, "vz_run op  %-14s %-9s %6s %9s %6s %8s  %s\n", "stream", "phase", "count", "ms", "share", "TFLOP/s",
          "operation");
  for (auto *r : rows) {
    const auto &[where, ph, name] = r->first;
    const Sum &s = r->second;
    const char *nm = name == kMark ? "(unnamed work before the phase mark)" : p.names[name].c_str();
    fprintf(stderr, "vz_run op  %-14s %-9s %6d %9.3f %5.1f%% ", where.empty() ? "compute" : where.c_str(),
            ph < 0 ? "-" : phase_name[ph], s.count, s.ms, total > 0 ? 100 * s.ms / total : 0.);
    if (s.flops > 0 && s.ms > 0)
      fprintf(stderr, "%8.1f", s.flops / s.ms / 1e9);
    else
      fprintf(stderr, "%8s", "");
    fprintf(stderr, "  %s\n", nm);
  }
}
}  // namespace

void prof_start(vz_engine *e) {
  Profile &p = e->prof;
  if (p.level == 0) return;
  if (p.level >= 2) {
    p.ops.clear();
    p.active = true;
    for (cudaStream_t s : {e->stream, e->deq_stream, e->copy_stream}) record(e, kStart, P_UPLOAD, 0, s);
    return;
  }
  cudaStreamSynchronize(e->stream);
  for (double &m : p.ms) m = 0;
  p.last = now_ms();
}

void prof_mark(vz_engine *e, ProfPhase ph) {
  Profile &p = e->prof;
  if (p.level == 0) return;
  if (p.level >= 2) {
    record(e, kMark, ph, 0, e->stream);
    return;
  }
  cudaStreamSynchronize(e->stream);
  double t = now_ms();
  p.ms[ph] += t - p.last;
  p.last = t;
}

void prof_op_at(vz_engine *e, const char *name, double flops, cudaStream_t stream) {
  Profile &p = e->prof;
  if (!p.active) return;  // work outside a pass (uploads, relayouts)
  auto it = std::find(p.names.begin(), p.names.end(), name);
  const int id = (int)(it - p.names.begin());
  if (it == p.names.end()) p.names.push_back(name);
  record(e, id, P_UPLOAD, flops, stream ? stream : e->stream);
}

void prof_report(vz_engine *e, int n_rows) {
  Profile &p = e->prof;
  if (p.level == 0) return;
  if (p.level >= 2) {
    report_ops(e, n_rows);
    p.active = false;
    return;
  }
  double total = 0;
  for (double m : p.ms) total += m;
  fprintf(stderr, "vz_run profile: rows %d total %.1f ms:", n_rows, total);
  for (int q = 0; q < P_NPHASE; q++) fprintf(stderr, " %s %.1f", phase_name[q], p.ms[q]);
  fprintf(stderr, "\n");
}

void prof_release(vz_engine *e) {
  for (cudaEvent_t ev : e->prof.events) cudaEventDestroy(ev);
  e->prof.events.clear();
}
