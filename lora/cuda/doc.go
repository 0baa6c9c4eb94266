// Package cuda is vzlocal's CUDA gradient engine: the lora.Engine interface (log-probs, the loss
// sum_t w_t log p_t and its gradient with respect to every LoRA matrix) with the CPU reference's
// math and batch layout, on one NVIDIA GPU.
//
// The GPU code is csrc/, built by `make cuda` into libvzlocal_cuda.so and loaded at run time with
// dlopen (dl.go), so this package and every binary that imports it build and run with no CUDA
// toolkit: Available says whether the engine can run here, and Open / OpenFile return errors
// wrapping ErrNoLibrary, ErrNoDevice or ErrUnsupported when it cannot. The CPU engine
// (lora.CPU) is the oracle: the tests compare logits, log-probs, loss, every gradient and five
// AdamW steps with it (they skip without a GPU). Design, memory plan, build steps and the GPU
// verification checklist: docs/cuda.md.
package cuda
