// Package amxlink makes binaries that link llama.cpp through github.com/ollama/ollama/llama build
// with -march=native on CPUs with AMX (Intel Sapphire Rapids and later).
//
// There, ggml-cpu.cpp is compiled with __AMX_INT8__ and calls ggml_backend_amx_buffer_type(), but no
// Go package of the ollama module compiles amx/amx.cpp, so the link fails with "undefined reference
// to ggml_backend_amx_buffer_type()". amx_link.cpp defines it to return nullptr, which is what ggml's
// own amx.cpp returns when the kernel refuses AMX: the CPU backend then runs without the AMX extra
// buffer type. On other CPUs, or with PORTABLE=1, the file compiles to nothing.
//
// Import it for its side effect: import _ "github.com/vzlocal/vzlocal/internal/amxlink".
package amxlink

import "C"
