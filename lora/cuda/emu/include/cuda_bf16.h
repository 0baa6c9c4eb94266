// Stand-in for the toolkit's cuda_bf16.h in the CPU emulation: __nv_bfloat16 is in ../cuda_emu.h.
#pragma once
#include "../cuda_emu.h"
