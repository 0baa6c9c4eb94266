// Stand-in for the toolkit's cuda_fp16.h in the CPU emulation: __half is in ../cuda_emu.h.
#pragma once
#include "../cuda_emu.h"
