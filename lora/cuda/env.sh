#!/usr/bin/env bash
# Prints the environment a vzlocal process needs to use the GPU builds of `make cuda`:
#   eval "$(lora/cuda/env.sh)"; bin/vzlocal ...
# OLLAMA_LIBRARY_PATH is where the llama package's ggml.OnceLoad looks for backends (an entry must
# contain "lib/ollama"); LD_LIBRARY_PATH lets libggml-cuda.so find libggml-base.so and cuBLAS
# (ggml sets no RPATH, and glibc reads LD_LIBRARY_PATH only when a process starts);
# VZLOCAL_CUDA_LIB names the gradient engine's library.
root=$(cd "$(dirname "$0")/../.." && pwd)
dirs=$(ls -d "$root"/bin/lib/ollama/cuda_v* 2>/dev/null | tr '\n' ':' | sed 's/:$//')
echo "export OLLAMA_LIBRARY_PATH=\"$dirs\""
echo "export LD_LIBRARY_PATH=\"$dirs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
echo "export VZLOCAL_CUDA_LIB=\"$root/bin/libvzlocal_cuda.so\""
