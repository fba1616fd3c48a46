# pdcore developer tasks. `make help` lists them.
.DEFAULT_GOAL := help
PYTHON ?= python3
PIP := $(PYTHON) -m pip
export HYPOTHESIS_PROFILE ?= dev

.PHONY: help
help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

.PHONY: dev
dev: ## install pdcore in editable mode with test and lint tools (rebuilds the Rust extension)
	$(PIP) install -q -e ".[test,lint,plot,ray,serve]"

.PHONY: test
test: dev ## run the Rust and Python test suites (benchmarks run once each as smoke tests)
	cargo test --locked --lib
	$(PYTHON) -m pytest -m "not realtime"

.PHONY: lint
lint: dev ## rustfmt, clippy (pedantic, -D warnings), ruff, mypy --strict, stubtest
	cargo fmt --all -- --check
	cargo clippy --locked --all-targets --features python -- -D warnings
	$(PYTHON) -m ruff check python tests benches
	$(PYTHON) -m ruff format --check python tests benches
	$(PYTHON) -m mypy --strict python/pdcore
	$(PYTHON) -m mypy.stubtest pdcore._core --allowlist .mypy-stubtest-allowlist

# llama.cpp built for any x86-64 host: a native build (-DGGML_NATIVE=ON, llama.cpp's default) uses every
# instruction of the build machine, and crashes where a VM does not grant one (AMX on some Xeon hosts).
# Opt into native with `make live LLAMA_CMAKE_ARGS=-DGGML_NATIVE=ON` (README, "Live runtime").
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: live
live: ## the live runtime for real: build the device extra (llama.cpp, portable), start a llama.cpp server as the cloud, run the realtime tests
	CMAKE_BUILD_PARALLEL_LEVEL="$${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS) -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
		$(PIP) install -q -e ".[device,test]"
	PYTHON=$(PYTHON) scripts/ci_live.sh

.PHONY: format
format: ## format Rust and Python sources
	cargo fmt --all
	$(PYTHON) -m ruff format python tests benches
	$(PYTHON) -m ruff check --fix python tests benches

.PHONY: bench
bench: ## run the benchmarks for real: criterion (Rust core) and the Python report with ratios
	cargo bench --bench core
	$(PYTHON) benches/python/report.py --check

.PHONY: clean
clean: ## remove build artefacts
	cargo clean
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis .benchmarks
