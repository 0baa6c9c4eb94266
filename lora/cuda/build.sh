#!/usr/bin/env bash
# Builds vzlocal's GPU parts; `make cuda` and `make cuda-check` call it.
#
#   build.sh lib     bin/libvzlocal_cuda.so, the CUDA gradient engine (nvcc + cuBLAS)
#   build.sh check   compile and link the engine's sources into a temporary folder and check the
#                    exported symbols: catches compile errors on a machine without a GPU. With no
#                    nvcc it prints why and exits 0 (set CUDA_CHECK_REQUIRED=1 to make that fail).
#   build.sh emu [out]  the same engine compiled for the CPU emulation of CUDA and cuBLAS (emu/,
#                    docs/cuda.md) with the host C++ compiler: default bin/libvzlocal_cuda_emu.so.
#                    TestEngineOnCPUEmulation builds it and runs the GPU tests on it.
#   build.sh ggml-src  copy the CMake sources of ggml from the Ollama Go module to bin/ollama-src
#                    (writable, and small enough to carry to a machine without Go)
#   build.sh ggml    build ggml's CUDA backend from bin/ollama-src with CMake and install
#                    libggml-base.so + libggml-cuda.so (+ the CUDA runtime libraries) into
#                    bin/lib/ollama/cuda_vNN, where OLLAMA_LIBRARY_PATH points (see env.sh)
#
# Variables: NVCC (default: nvcc on PATH, then /usr/local/cuda/bin/nvcc), CUDA_ARCH (default 90,
# the H100/H200; one architecture keeps the build short), OLLAMA_SRC (the module folder; default
# from `go env GOMODCACHE`), JOBS (parallel compile jobs for the ggml build, default nproc).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
arch=${CUDA_ARCH:-90}
out=$root/bin

find_nvcc() {
  if [ -n "${NVCC:-}" ]; then echo "$NVCC"; return; fi
  if command -v nvcc >/dev/null 2>&1; then command -v nvcc; return; fi
  if [ -x /usr/local/cuda/bin/nvcc ]; then echo /usr/local/cuda/bin/nvcc; return; fi
  echo ""
}

srcs=(engine.cu run.cu scratch.cu layers.cu fold.cu attention.cu flash.cu kernels.cu gemm.cu memory.cu workspace.cu dequant.cu profile.cu)
# -fvisibility=hidden: only the vz_* C ABI is exported (VZ_API). cudart is linked statically
# (nvcc's default), cuBLAS dynamically from the toolkit.
flags=(-std=c++17 -O3 -gencode "arch=compute_${arch},code=sm_${arch}" -Xcompiler -fPIC
  -Xcompiler -fvisibility=hidden -Xcompiler -Wall -Xptxas -warn-spills)

build_lib() { # $1 = output .so
  local nvcc
  nvcc=$(find_nvcc)
  [ -n "$nvcc" ] || { echo "build.sh: no nvcc (install the CUDA toolkit, or set NVCC)" >&2; exit 1; }
  mkdir -p "$(dirname "$1")"
  echo "nvcc: $("$nvcc" --version | tail -1); arch sm_$arch"
  # One nvcc per source, all at once, then one link: a single nvcc call compiles its sources one
  # after another, and the GPU session's build time counts against its device minutes.
  local tmp f p pids=() objs=() rc=0
  tmp=$(mktemp -d)
  for f in "${srcs[@]}"; do
    (cd "$here/csrc" && "$nvcc" "${flags[@]}" -c -o "$tmp/$f.o" "$f") &
    pids+=($!) objs+=("$tmp/$f.o")
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  if [ "$rc" = 0 ]; then
    "$nvcc" "${flags[@]}" -shared -o "$1.tmp" "${objs[@]}" -lcublas || rc=1
  fi
  rm -rf "$tmp"
  [ "$rc" = 0 ] || { echo "build.sh: nvcc failed" >&2; exit 1; }
  mv "$1.tmp" "$1"
}

# build_emu: the kernels' <<<grid, block, smem, stream>>> launches are rewritten as
# `kernel * emu::Launch(grid, block, smem, stream)(args)` (emu/include/cuda_runtime.h) in a copy of
# the sources; everything else compiles as it is, against emu/include's toolkit stand-ins.
build_emu() { # $1 = output .so
  local cxx=${CXX:-g++} tmp
  command -v "$cxx" >/dev/null || { echo "build.sh: no $cxx (make setup installs g++)" >&2; exit 1; }
  tmp=$(mktemp -d)
  cp "$here"/csrc/*.cu "$here"/csrc/*.cuh "$here"/csrc/*.h "$tmp/"
  sed -i 's/<<</ * emu::Launch(/g; s/>>>(/)(/g' "$tmp"/*.cu "$tmp"/*.cuh
  mkdir -p "$(dirname "$1")"
  local objs=() pids=() f
  for f in "${srcs[@]}" runtime.cc; do
    local src=$tmp/$f lang=(-x c++)
    [ "$f" = runtime.cc ] && src=$here/emu/runtime.cc lang=()
    "$cxx" "${lang[@]}" -std=c++20 -O2 -fPIC -ffp-contract=off -fvisibility=hidden -pthread -Wall \
      -Wno-unknown-pragmas -I "$here/emu/include" -c "$src" -o "$tmp/$f.o" &
    pids+=($!) objs+=("$tmp/$f.o")
  done
  local p rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  [ "$rc" = 0 ] || { rm -rf "$tmp"; echo "build.sh emu: compile failed" >&2; exit 1; }
  "$cxx" -shared -pthread -o "$1.tmp" "${objs[@]}"
  mv "$1.tmp" "$1"
  rm -rf "$tmp"
}

check_exports() { # $1 = .so: the exported vz_* functions must be exactly those of vz_cuda.h
  local want got
  command -v nm >/dev/null || { echo "(no nm: export check skipped)"; return; }
  want=$(grep -o 'VZ_API [a-z0-9_ ]*\*\? *vz_[a-z_]*' "$here/csrc/vz_cuda.h" | grep -o 'vz_[a-z_]*$' | sort)
  got=$(nm -D --defined-only "$1" | awk '$2 == "T" {print $3}' | grep -v '^_' | sort)
  if [ "$want" != "$got" ]; then
    echo "exported symbols differ from vz_cuda.h:"; diff <(echo "$want") <(echo "$got") || true; exit 1
  fi
}

case "${1:-}" in
lib)
  build_lib "$out/libvzlocal_cuda.so"
  check_exports "$out/libvzlocal_cuda.so"
  echo "built $out/libvzlocal_cuda.so"
  ;;
check)
  if [ -z "$(find_nvcc)" ]; then
    echo "cuda-check: SKIPPED: no nvcc found (Debian: enable the non-free component and apt-get install nvidia-cuda-toolkit; see docs/cuda.md)"
    [ "${CUDA_CHECK_REQUIRED:-0}" = 1 ] && exit 1
    exit 0
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  build_lib "$tmp/libvzlocal_cuda.so"
  check_exports "$tmp/libvzlocal_cuda.so"
  echo "cuda-check: OK (compiled and linked for sm_$arch; exports match vz_cuda.h)"
  ;;
emu)
  lib=${2:-$out/libvzlocal_cuda_emu.so}
  build_emu "$lib"
  check_exports "$lib"
  echo "built $lib (CPU emulation; not for training)"
  ;;
ggml-src)
  src=${OLLAMA_SRC:-$(go env GOMODCACHE)/github.com/ollama/ollama@v0.17.4}
  [ -f "$src/CMakeLists.txt" ] || { echo "no Ollama module at $src (run make setup)"; exit 1; }
  rm -rf "$out/ollama-src"
  mkdir -p "$out/ollama-src/ml/backend/ggml"
  cp "$src/CMakeLists.txt" "$src/CMakePresets.json" "$out/ollama-src/"
  cp -r "$src/ml/backend/ggml/ggml" "$out/ollama-src/ml/backend/ggml/"
  chmod -R u+w "$out/ollama-src"   # the module cache is read-only
  # A go.mod of its own keeps the copy's Go files out of vzlocal's `./...` (go vet, go test).
  printf 'module ollama-src\n' > "$out/ollama-src/go.mod"
  echo "copied ggml's CMake sources to $out/ollama-src ($(du -sh "$out/ollama-src" | cut -f1))"
  ;;
ggml)
  [ -d "$out/ollama-src" ] || "$0" ggml-src
  nvcc=$(find_nvcc)
  [ -n "$nvcc" ] || { echo "build.sh: no nvcc" >&2; exit 1; }
  command -v cmake >/dev/null || { echo "build.sh: no cmake" >&2; exit 1; }
  major=$("$nvcc" --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p')
  preset="CUDA $major"   # CMakePresets.json has CUDA 11, 12 and 13
  dir=cuda_v$major
  cd "$out/ollama-src"
  # Ollama's ggml patch gives the CUDA backend a `reset` that ggml_backend_sched_free calls, but
  # llama_context frees its backends before its scheduler (member order), so llama_free jumps
  # through the freed CUDA backend and crashes (seen on an H100: SIGSEGV in ggml_backend_cuda_reset
  # under llama_free). Only the scheduler's free calls it; without it the CUDA backend frees like
  # the CPU backend, whose reset is NULL.
  cu=ml/backend/ggml/ggml/src/ggml-cuda/ggml-cuda.cu
  sed -i 's|/\* \.reset *= \*/ ggml_backend_cuda_reset,|/* .reset = */ NULL, /* vzlocal: see build.sh */|' "$cu"
  grep -q 'vzlocal: see build.sh' "$cu" || { echo "build.sh: could not patch the CUDA backend's reset in $cu" >&2; exit 1; }
  gen=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  cmake --preset "$preset" "${gen[@]}" -DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="$arch" \
    -DCMAKE_INSTALL_PREFIX="$out/ollama-dist"
  cmake --build --preset "$preset" -j "${JOBS:-$(nproc)}"
  rm -rf "$out/ollama-dist"
  # The CUDA component holds the CUDA backend and the cuBLAS/cudart copies. libggml-base (which
  # the backend links) belongs to the CPU component, whose install also wants the CPU variants
  # that the preset does not build (the Go binary has its own CPU backend compiled in): copy it.
  cmake --install build --component CUDA --strip
  cp -a build/lib/ollama/libggml-base.so* "$out/ollama-dist/lib/ollama/$dir/"
  mkdir -p "$out/lib/ollama/$dir"
  find "$out/ollama-dist/lib/ollama" -name 'libggml-cpu*' -delete
  cp -a "$out/ollama-dist/lib/ollama/$dir/." "$out/lib/ollama/$dir/"
  ls -la "$out/lib/ollama/$dir"
  echo "ggml CUDA backend installed in $out/lib/ollama/$dir; run: eval \$(lora/cuda/env.sh)"
  ;;
*)
  echo "usage: $0 lib|check|emu [out]|ggml-src|ggml" >&2
  exit 2
  ;;
esac
