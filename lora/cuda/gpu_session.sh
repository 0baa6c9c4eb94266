#!/usr/bin/env bash
# Runs on the GPU machine (device tool), from the repository root, after gpu_bundle.sh here.
# Each step fits one device call (10 minutes); results go to $OUT (or bin/out) and the output.
#
#   gpu_session.sh unpack   bin/gpu-bundle.tar.xz -> bin/gpu/, bin/ollama-src/ (python3's tarfile:
#                           no xz binary needed)
#   gpu_session.sh check    build bin/libvzlocal_cuda.so with this machine's nvcc, run every
#                           GPU test (-v: they log every measured error), then compute-sanitizer
#                           memcheck on the tiny model's parity, folded-LoRA and pass-protocol tests
#   gpu_session.sh check-flash  compute-sanitizer memcheck and racecheck on the flash kernels
#   gpu_session.sh bench    BenchmarkCUDABackward (the CUDA engine, bf16-resident weights)
#   gpu_session.sh profile  every kernel, GEMM and copy of a 7B step timed (VZLOCAL_CUDA_PROFILE=2;
#                           default rows: seq 4096 and the GRPO group, flash, keep -1); the last
#                           pass's table of each row into $OUT/profile.txt
#   gpu_session.sh bench-q  BenchmarkCUDAQuantized7B (7B GRPO step, Q4_K_M-like layers kept
#                           quantized: the 16 GB target)
#   gpu_session.sh rollout  BenchmarkCUDARollout (llama.cpp on ggml's CUDA backend, G = 8,
#                           Q4_K_M-like and Q8_0 7B; needs the ggml build done)
#   gpu_session.sh train    training with the CUDA engine: TestToyRewardLearnsOnGPU (the reward
#                           must rise) and TestTrainOnGPU (`vzlocal train --engine cuda`); the
#                           rollouts on the GPU too once the ggml build is installed
#   gpu_session.sh peft     bench/peft_bench.py (PyTorch + PEFT, same workloads)
#   gpu_session.sh ggml     start ggml's CUDA backend build in the background (setsid; it
#                           outlives the call while the machine stays held); log in bin/ggml-build.log
#   gpu_session.sh quick    the whole session in one call, for a 15-minute device budget: unpack,
#                           build, then steps in priority order (every GPU test, the 7B timings,
#                           PEFT's 7B twin, the 7B profile, memcheck, 3B, the quantized step, the
#                           training tests), each started only while QUICK_BUDGET seconds (default
#                           390) leave room for it; $OUT/quick.txt lists each step's status and
#                           seconds and every timing row (docs/cuda.md, "Running the GPU checks")
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-bin/out}
mkdir -p "$out"
export LD_LIBRARY_PATH="$PWD/bin/gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export VZLOCAL_CUDA_LIB="$PWD/bin/libvzlocal_cuda.so"
PATH=$PATH:/usr/local/cuda/bin
case "${1:-}" in
unpack)
  python3 -m tarfile -e bin/gpu-bundle.tar.xz bin/ && ls -la bin/gpu bin/gpu/lib
  ;;
check)
  nvidia-smi -L; nvcc --version | tail -2
  lora/cuda/build.sh lib 2>&1 | tee "$out/build.log" || exit 1
  # Every test of the package, less those that run here: the two that emulate the GPU on the CPU
  # (they build with g++) and the scripts check (it reads the package folder).
  bin/gpu/cuda.test -test.v -test.timeout 8m -test.skip 'TestFlashKernelsOnCPU|TestEngineOnCPUEmulation|TestGPUScripts' 2>&1 | tee "$out/parity.log"
  rc=${PIPESTATUS[0]}
  GODEBUG=asyncpreemptoff=1 compute-sanitizer --tool memcheck --leak-check full --error-exitcode 3 \
    bin/gpu/cuda.test -test.short -test.v -test.run 'TestParity$|TestFoldedLoRA|TestPassProtocol' 2>&1 | tee "$out/memcheck.log" | tail -30
  echo "parity rc=$rc memcheck rc=${PIPESTATUS[0]}"
  ;;
check-flash)
  # The flash kernels under the sanitizer: out-of-bounds accesses (memcheck) and shared-memory
  # hazards between threads (racecheck), on the smallest flash parity case.
  for tool in memcheck racecheck; do
    GODEBUG=asyncpreemptoff=1 compute-sanitizer --tool $tool --error-exitcode 3 \
      bin/gpu/cuda.test -test.v -test.run 'TestFlashParity/hd64-gqa' 2>&1 | tee "$out/flash_$tool.log" | tail -15
    echo "flash $tool rc=${PIPESTATUS[0]}"
  done
  ;;
bench)
  bin/gpu/bench.test -test.v -test.run '^$' -test.bench CUDABackward -test.benchtime 1x -test.timeout 9m 2>&1 | tee "$out/bench_cuda.log"
  ;;
profile)
  sel=${VZLOCAL_PROFILE_BENCH:-CUDABackward/qwen2.5-7b/(seq=4096|group)}
  VZLOCAL_CUDA_PROFILE=2 VZLOCAL_BENCH_ATTN=${VZLOCAL_BENCH_ATTN:-flash} VZLOCAL_BENCH_KEEP=${VZLOCAL_BENCH_KEEP:--1} \
    bin/gpu/bench.test -test.v -test.run '^$' -test.bench "$sel" -test.benchtime 1x -test.timeout 9m > "$out/profile_full.log" 2>&1
  rc=$?
  # Each pass prints its table (largest rows first); keep the top of the last one before each
  # row's result line.
  awk '/^vz_run operations/ {buf = ""; n = 0} /^vz_run/ {if (n++ < 60) buf = buf $0 "\n"; next}
       /^cuda\t/ {printf "%s%s\n\n", buf, $0; buf = ""}' "$out/profile_full.log" | tee "$out/profile.txt"
  grep -E '^(--- FAIL|FAIL|panic)' "$out/profile_full.log"
  echo "profile rc=$rc"
  ;;
bench-q)
  bin/gpu/bench.test -test.v -test.run '^$' -test.bench CUDAQuantized7B -test.benchtime 1x -test.timeout 9m 2>&1 | tee "$out/bench_cuda_q.log"
  ;;
rollout)
  eval "$(lora/cuda/env.sh)"
  if [ -z "$OLLAMA_LIBRARY_PATH" ] || [ ! -e "$OLLAMA_LIBRARY_PATH/libggml-cuda.so" ]; then
    echo "ggml's CUDA backend is not installed in bin/lib/ollama/cuda_v*: run '$0 ggml' and wait for it"
    tail -20 bin/ggml-build.log 2>/dev/null
    exit 1
  fi
  bin/gpu/bench.test -test.v -test.run '^$' -test.bench CUDARollout -test.benchtime 3x -test.timeout 9m 2>&1 | tee "$out/bench_rollout.log"
  ;;
train)
  eval "$(lora/cuda/env.sh)"
  if [ -z "$OLLAMA_LIBRARY_PATH" ] || [ ! -e "$OLLAMA_LIBRARY_PATH/libggml-cuda.so" ]; then
    echo "note: ggml's CUDA backend is not installed (run '$0 ggml'): the rollouts run on the CPU"
  fi
  rc=0
  for t in "train.test TestToyRewardLearnsOnGPU" "vzlocal.test TestTrainOnGPU"; do
    set -- $t
    bin/gpu/$1 -test.v -test.run "^$2\$" -test.timeout 4m > "$out/$2.log" 2>&1 || rc=1
    grep -v '"level":"debug"' "$out/$2.log" | tail -25
  done
  echo "train rc=$rc"
  ;;
peft)
  PYTHONUNBUFFERED=1 python3 bench/peft_bench.py "${@:2}" 2>&1 | tee "$out/bench_peft.log"
  ;;
quick)
  t0=$SECONDS
  budget=${QUICK_BUDGET:-390}
  summary=$out/quick.txt
  : > "$summary"
  # step NAME SECONDS CMD...: runs CMD (output to $out/NAME.log) if SECONDS (its expected length)
  # still fit the budget, under a timeout of what is left; records the status either way.
  step() {
    local name=$1 est=$2 left rc
    shift 2
    left=$((budget - (SECONDS - t0)))
    if [ "$left" -lt "$est" ]; then
      echo "$name: skipped (${left}s left, needs ~${est}s)" | tee -a "$summary"
      return 1
    fi
    local s0=$SECONDS
    timeout --kill-after=10 "$left" "$@" > "$out/$name.log" 2>&1
    rc=$?
    echo "$name: rc=$rc in $((SECONDS - s0))s" | tee -a "$summary"
    return $rc
  }
  { nvidia-smi -L; nvcc --version | tail -1; date -u; } | tee -a "$summary"
  [ -x bin/gpu/cuda.test ] || step unpack 20 python3 -m tarfile -e bin/gpu-bundle.tar.xz bin/ || exit 1
  step build 90 lora/cuda/build.sh lib || { tail -30 "$out/build.log"; exit 1; }
  step tests 90 bin/gpu/cuda.test -test.v -test.timeout 150s -test.skip 'TestFlashKernelsOnCPU|TestEngineOnCPUEmulation|TestGPUScripts'
  [ -f "$out/tests.log" ] && { echo "tests: $(grep -c '^\s*--- PASS' "$out/tests.log") passed, $(grep -c '^\s*--- SKIP' "$out/tests.log") skipped"
    grep -E '^\s*--- FAIL|^(FAIL|panic)|Available: ' "$out/tests.log"; } | tee -a "$summary"
  # The CUDA bench's rows: flash, keep -1, one engine per row; the -test.bench pattern picks the
  # size and workload, the variables the variants (fold and flash prefetch lists: 4 rows each).
  cudabench=(bin/gpu/bench.test -test.v -test.run '^$' -test.benchtime 1x)
  variants=(env VZLOCAL_BENCH_ATTN=flash VZLOCAL_BENCH_KEEP=-1 VZLOCAL_BENCH_FOLD=0,1 VZLOCAL_BENCH_FLASH_PF=0,1)
  one=(env VZLOCAL_BENCH_ATTN=flash VZLOCAL_BENCH_KEEP=-1)  # the defaults: fold=1, pf=0
  step bench7b 120 "${variants[@]}" "${cudabench[@]}" -test.bench 'CUDABackward/qwen2.5-7b/(seq=4096|group)'
  step peft7b 75 env PYTHONUNBUFFERED=1 python3 bench/peft_bench.py --sizes qwen2.5-7b --workloads seq=4096 --checkpointing off
  step profile7b 40 "${one[@]}" VZLOCAL_CUDA_PROFILE=2 "${cudabench[@]}" -test.bench 'CUDABackward/qwen2.5-7b/seq=4096'
  # The same 7B row as bench7b's fold=1,pf=0 on cuBLAS's default workspace pool (engine.cu blas_workspace)
  step bench7b-ws0 25 "${one[@]}" VZLOCAL_CUDA_BLAS_WS_MIB=0 "${cudabench[@]}" -test.bench 'CUDABackward/qwen2.5-7b/seq=4096'
  step memcheck 90 env GODEBUG=asyncpreemptoff=1 compute-sanitizer --tool memcheck --leak-check full --error-exitcode 3 \
    bin/gpu/cuda.test -test.short -test.run 'TestParity$|TestFoldedLoRA|TestPassProtocol'
  [ -f "$out/memcheck.log" ] && grep -E 'ERROR SUMMARY|LEAK SUMMARY' "$out/memcheck.log" | tee -a "$summary"
  step bench3b 60 "${variants[@]}" "${cudabench[@]}" -test.bench 'CUDABackward/qwen2.5-3b/seq=4096'
  step peft3b 50 env PYTHONUNBUFFERED=1 python3 bench/peft_bench.py --sizes qwen2.5-3b --workloads seq=4096 --checkpointing off
  step benchq 90 "${cudabench[@]}" -test.bench CUDAQuantized7B
  step train 120 "$0" train
  {
    echo "--- timings (bench*.log, peft*.log; the 7B profile in profile.txt)"
    (cd "$out" && grep -E '^cuda(-q4km)?	' bench*.log; grep -E '^[{#]' peft*.log) 2>/dev/null
    echo "total $((SECONDS - t0))s"
  } | tee -a "$summary"
  awk '/^vz_run operations/ {buf = ""; n = 0} /^vz_run/ {if (n++ < 60) buf = buf $0 "\n"; next}
       /^cuda\t/ {printf "%s%s\n\n", buf, $0; buf = ""}' "$out/profile7b.log" > "$out/profile.txt" 2>/dev/null
  ;;
ggml)
  setsid nohup lora/cuda/build.sh ggml > bin/ggml-build.log 2>&1 < /dev/null &
  echo "ggml CUDA build started (pid $!); tail bin/ggml-build.log in a later call"
  ;;
*)
  echo "usage: $0 quick|unpack|check|check-flash|bench|profile|bench-q|rollout|train|peft|ggml" >&2
  exit 2
  ;;
esac
