#!/usr/bin/env bash
# mutants.sh: checks that the CPU emulation catches bugs (a test of the test). Each mutant is one
# deliberate bug in a copy of csrc/flash.cuh, of the kinds the emulation exists to find (fragment
# addressing, missing waits and barriers, register order, units); the emulated kernels must fail
# emu/flash_emu_test.cc for every one. Run by hand after changing cuda_emu.h or flash.cuh
# (about a minute); prints one line per mutant and exits 1 if any survives.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# name|perl substitution applied to flash.cuh (-0: the whole file is one string)
mutants=(
  'a_off lane fields swapped|s/L::at\(r \+ lane % 16, c \+ lane \/ 16 \* 8\)/L::at(r + lane \/ 16, c + lane % 16 * 8)/'
  'b_off lane fields swapped|s/L::at\(r \+ lane \/ 8 % 2 \* 8 \+ lane % 8, c \+ lane \/ 16 \* 8\)/L::at(r + lane \/ 16 * 8 + lane % 8, c + lane \/ 8 % 2 * 8)/'
  'forward waits one group too few|s/issue\(t \+ 1\);\n      mma::cp_async_wait<1>\(\);/issue(t + 1);\n      mma::cp_async_wait<2>();/'
  'forward end-of-tile barrier missing|s/    __syncthreads\(\);  \/\/ tile t.s buffers are refilled[^\n]*\n//'
  'P registers swapped|s/pack_bf16\(pr\[0\]\[2\], pr\[0\]\[3\]\), pack_bf16\(pr\[1\]\[0\], pr\[1\]\[1\]\)/pack_bf16(pr[1][0], pr[1][1]), pack_bf16(pr[0][2], pr[0][3])/'
  'dV reads the Q tile|s/ldsm_x4_t\(bb, dOs \+ b_off/ldsm_x4_t(bb, Qs + b_off/'
  'lse in log2 units|s/mrow\[u\] \* kLn2 \+ logf/mrow[u] + logf/'
  'backward barrier after P, dS missing|s/    __syncthreads\(\);\n    \/\/ dV \+= P\^T dO/    \/\/ dV += P^T dO/'
  'backward tile-start barrier missing|s/    __syncthreads\(\);  \/\/ the previous query tile[^\n]*\n//'
  'causal mask off by one|s/j0 \+ c <= i\)/j0 + c <= i + 1)/'
  'backward with loads ahead waits one group too few|s/mma::cp_async_wait<1>\(\);  \/\/ all but/mma::cp_async_wait<2>();  \/\/ all but/'
  'swizzle missing in the tile copies|s/dst \+ Lay<HD, Swz>::at\(r, c\)/dst + r * HD + c/'
  'the next tile statistics taken for this one|s/stats\(i0 \+ kBwdRows, lse_r, D_r\)/stats(i0, lse_r, D_r)/'
)

survivors=0
for m in "${mutants[@]}"; do
  name=${m%%|*} expr=${m#*|}
  rm -rf "$tmp/csrc" "$tmp/emu" && mkdir -p "$tmp/csrc" "$tmp/emu"
  cp "$here"/../csrc/*.cuh "$tmp/csrc/" && cp "$here"/cuda_emu.h "$here"/flash_emu_test.cc "$tmp/emu/"
  cp "$tmp/csrc/flash.cuh" "$tmp/orig"
  perl -0pi -e "$expr" "$tmp/csrc/flash.cuh"
  if cmp -s "$tmp/orig" "$tmp/csrc/flash.cuh"; then
    echo "NOT APPLIED  $name (the pattern no longer matches flash.cuh: update mutants.sh)"; survivors=$((survivors + 1)); continue
  fi
  g++ -std=c++20 -O2 -pthread -o "$tmp/run" "$tmp/emu/flash_emu_test.cc"
  if timeout 300 "$tmp/run" >"$tmp/out" 2>&1; then
    echo "SURVIVED     $name"; survivors=$((survivors + 1))
  else
    echo "caught       $name: $(grep -m1 -E 'FAIL|cuda_emu' "$tmp/out" | cut -c1-110)"
  fi
done
[ "$survivors" = 0 ] && echo "all ${#mutants[@]} mutants caught" || { echo "$survivors mutants not caught"; exit 1; }
