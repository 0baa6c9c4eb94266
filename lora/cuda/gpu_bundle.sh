#!/usr/bin/env bash
# Packs what a GPU session needs from this machine into bin/gpu-bundle.tar.xz (the GPU machine
# has no Go and no network; the device tool carries at most 64 MiB, so everything is compressed):
#   gpu/cuda.test, gpu/bench.test   test binaries, PORTABLE=1 (no -march=native: the GPU host's
#   gpu/train.test, gpu/vzlocal.test  CPU may differ from this one); the last two run training
#                                   with the CUDA engine (gpu_session.sh train)
#   gpu/lib/                        libopenblas.so.0 and its Fortran runtime (the test binaries
#                                   link OpenBLAS dynamically; the GPU image has none)
#   ollama-src/                     ggml's CMake sources for the CUDA backend (build.sh ggml)
# The CUDA sources travel with the working tree; libvzlocal_cuda.so is built there with its nvcc.
# On the GPU machine: lora/cuda/gpu_session.sh unpack (see docs/cuda.md).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/gpu/lib"
PORTABLE=1 ./scripts/go test -c -ldflags="-s -w" -o "$stage/gpu/cuda.test" ./lora/cuda/
PORTABLE=1 ./scripts/go test -c -ldflags="-s -w" -o "$stage/gpu/bench.test" ./bench/
PORTABLE=1 ./scripts/go test -c -ldflags="-s -w" -o "$stage/gpu/train.test" ./selfplay/train/
PORTABLE=1 ./scripts/go test -c -ldflags="-s -w" -o "$stage/gpu/vzlocal.test" ./cmd/vzlocal/
for l in libopenblas.so.0 libgfortran.so.5 libquadmath.so.0; do
  cp -L "$(ldconfig -p | awk -v l="$l" '$1 == l {print $NF; exit}')" "$stage/gpu/lib/"
done
lora/cuda/build.sh ggml-src >/dev/null
cp -r bin/ollama-src "$stage/"
mkdir -p bin
tar -C "$stage" -cf - gpu ollama-src | xz -T2 -6 > bin/gpu-bundle.tar.xz
ls -la bin/gpu-bundle.tar.xz
