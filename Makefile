# vzlocal build. Every go command goes through scripts/go, which sets the cgo environment (the same
# bytes every time, so Go's build cache keeps the 3-6 minute llama.cpp build).
#   make setup     install what a fresh Debian machine lacks (idempotent)
#   make build     bin/vzlocal            (PORTABLE=1 for a generic x86-64 build)
#   make test      every test that runs without a GPU
#   make bench     benchmarks; results in bench/README.md
GO       := ./scripts/go
APT_PKGS := g++ nlohmann-json3-dev libstb-dev libopenblas-dev pkg-config gnome-backgrounds
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
VZ_INC   := $(HOME)/.cache/vzlocal/include
TOOLS    := $(HOME)/.cache/vzlocal/tools
OLLAMA_VERSION := 0.17.4

.PHONY: setup apt gomod build test test-short bench vet fmt clean

setup: apt gomod $(TOOLS)/bin/ollama

apt:
	@missing=$$(for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	else echo "apt packages present"; fi

gomod:
	go mod download
	go mod download github.com/gen2brain/malgo@v0.11.24
	mkdir -p $(VZ_INC)/miniaudio
	ln -sf "$$(go env GOMODCACHE)/github.com/gen2brain/malgo@v0.11.24/miniaudio.h" $(VZ_INC)/miniaudio/miniaudio.h

# The real Ollama server, built from the same module version (a go.mod tool dependency) and the
# same flags as vzlocal, so it reuses the cached llama.cpp build; for the export tests. Built to a
# temporary name first so that a failed build leaves no binary behind.
$(TOOLS)/bin/ollama: go.mod
	mkdir -p $(TOOLS)/bin
	$(GO) build -ldflags "-X github.com/ollama/ollama/version.Version=$(OLLAMA_VERSION)" \
		-o $(TOOLS)/bin/ollama.tmp github.com/ollama/ollama
	mv $(TOOLS)/bin/ollama.tmp $(TOOLS)/bin/ollama

build:
	$(GO) build -o bin/vzlocal ./cmd/vzlocal

test:
	$(GO) vet ./...
	$(GO) test -timeout 25m ./...

test-short:
	$(GO) test -short ./...

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./bench/

fmt:
	gofmt -l -w .

clean:
	rm -rf bin

# GPU builds (docs/cuda.md); never part of setup/build/test, which need no CUDA toolkit.
#   make cuda        bin/libvzlocal_cuda.so (the gradient engine) and ggml's CUDA backend in
#                    bin/lib/ollama/cuda_vNN (rollouts); then eval "$$(lora/cuda/env.sh)"
#   make cuda-check  compile the engine's CUDA sources with whatever nvcc exists (exit 0 with a
#                    SKIPPED message when there is none; CUDA_CHECK_REQUIRED=1 makes that an error)
# CUDA_ARCH=90 (H100/H200) by default; NVCC=/path/to/nvcc to choose a compiler; CUDA_GGML=0 skips
# the ggml backend (125 nvcc compiles: minutes on 16 cores, an hour or more on 2).
#   make cuda-emu    bin/libvzlocal_cuda_emu.so: the same engine on a CPU emulation of CUDA (for
#                    debugging kernels without a GPU: VZLOCAL_CUDA_LIB=bin/libvzlocal_cuda_emu.so;
#                    make test runs the GPU tests on it, TestEngineOnCPUEmulation)
.PHONY: cuda cuda-check cuda-emu
cuda:
	lora/cuda/build.sh lib
	[ "$(CUDA_GGML)" = 0 ] || lora/cuda/build.sh ggml

cuda-check:
	lora/cuda/build.sh check
cuda-emu:
	lora/cuda/build.sh emu
