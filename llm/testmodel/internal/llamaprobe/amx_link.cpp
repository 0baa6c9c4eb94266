// With -march=native on a CPU with AMX (Sapphire Rapids and later), ggml-cpu.cpp is compiled with
// __AMX_INT8__ and references ggml_backend_amx_buffer_type(), but the Go module compiles no package
// that defines it (amx/amx.cpp has no .go file), so linking fails. This definition returns nullptr,
// which is exactly what ggml's own amx.cpp returns when the kernel refuses AMX: the CPU backend then
// simply uses no AMX extra buffer type. Compiled only under the same condition as the reference.
#if defined(__AMX_INT8__) && defined(__AVX512VNNI__)
struct ggml_backend_buffer_type;
typedef struct ggml_backend_buffer_type * ggml_backend_buffer_type_t;
ggml_backend_buffer_type_t ggml_backend_amx_buffer_type() { return nullptr; }
#endif
