// See amxlink.go: the definition ggml-cpu.cpp needs when compiled with AMX, returning "no AMX".
#if defined(__AMX_INT8__) && defined(__AVX512VNNI__)
struct ggml_backend_buffer_type;
typedef struct ggml_backend_buffer_type * ggml_backend_buffer_type_t;
ggml_backend_buffer_type_t ggml_backend_amx_buffer_type() { return nullptr; }
#endif
