package llm

/*
#cgo LDFLAGS: -Wl,--wrap=ggml_backend_free -Wl,--wrap=ggml_backend_sched_free
#include "ggml-backend.h"
*/
import "C"

import (
	"fmt"

	"github.com/rs/zerolog/log"
)

// gpuDevices names the GPU devices that ggml's loaded backends offer ("CUDA0 (NVIDIA H100 80GB
// HBM3)"). Empty when only the CPU backend compiled into the binary is present, which is the case
// unless ggml's CUDA backend was built (make cuda) and OLLAMA_LIBRARY_PATH points at it.
func gpuDevices() []string {
	var out []string
	for i := range C.ggml_backend_dev_count() {
		d := C.ggml_backend_dev_get(i)
		switch C.ggml_backend_dev_type(d) {
		case C.GGML_BACKEND_DEVICE_TYPE_GPU, C.GGML_BACKEND_DEVICE_TYPE_IGPU:
			out = append(out, fmt.Sprintf("%s (%s)", C.GoString(C.ggml_backend_dev_name(d)),
				C.GoString(C.ggml_backend_dev_description(d))))
		}
	}
	return out
}

// logDevices says where rollouts run, once per loaded model: users with a GPU should see it used.
func logDevices(gpus []string, offload bool, layers int) {
	switch {
	case offload && layers > 0:
		log.Info().Strs("devices", gpus).Int("gpu_layers", layers).Msg("llm: rollouts on the GPU")
	case offload:
		log.Info().Strs("devices", gpus).Str("gpu_layers", "all").Msg("llm: rollouts on the GPU")
	case len(gpus) > 0:
		log.Info().Strs("devices", gpus).Msg("llm: rollouts on the CPU (GPU offload turned off)")
	default:
		log.Info().Msg("llm: rollouts on the CPU (no GPU backend loaded; see docs/cuda.md for make cuda)")
	}
}
