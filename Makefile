# neurofm: every target creates .venv and installs what it needs from nothing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_CPU := torch==2.13.0
STAMP_CORE := $(VENV)/.core-installed
STAMP_DEV := $(VENV)/.dev-installed

BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.bench-installed

.PHONY: demo test test-slow bench bench-env bench-decoding lint format clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# CPU torch first when no NVIDIA GPU is present (an unpinned torch would pull a multi-GB CUDA build).
$(BIN)/.torch: $(BIN)/python
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		$(BIN)/pip install --quiet "torch>=2.10"; \
	else \
		$(BIN)/pip install --quiet $(TORCH_CPU); \
	fi
	touch $@

$(STAMP_CORE): $(BIN)/.torch pyproject.toml
	$(BIN)/pip install --quiet -e ".[meg,spikes]"
	touch $@

$(STAMP_DEV): $(BIN)/.torch pyproject.toml
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(STAMP_CORE)

demo: $(STAMP_CORE)
	$(BIN)/neurofm demo --output demo_out

test: $(STAMP_DEV)
	$(BIN)/python -m pytest -q -n 2 --timeout 600

test-slow: $(STAMP_DEV)
	$(BIN)/python -m pytest -q -m slow --timeout 1200

# The real braindecode runs in its own environment (.venv-bench: the torch/torchaudio pair that
# braindecode needs, benchmarks/requirements-bench.txt); the benchmarks drive it by subprocess.
# When it cannot be built, `make bench` goes on and each benchmark says why in its JSON.
$(BENCH_STAMP): benchmarks/requirements-bench.txt
	$(PY) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -r benchmarks/requirements-bench.txt
	$(BENCH_VENV)/bin/python -c "import braindecode.models, braindecode.preprocessing"
	touch $@

bench-env: $(BENCH_STAMP)

bench: $(STAMP_DEV)
	@$(MAKE) bench-env || echo "bench-env failed: braindecode parts are skipped (reason in the JSON)"
	$(BIN)/python -m benchmarks.run --size smoke

# Decoding vs braindecode on EEGBCI S001 (../shared/data/eegbci_S001; minutes of CPU).
bench-decoding: $(STAMP_DEV)
	@$(MAKE) bench-env || echo "bench-env failed: the braindecode rows are skipped"
	$(BIN)/python -m benchmarks.decoding_vs_braindecode

lint: $(STAMP_DEV)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP_DEV)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) $(BENCH_VENV) demo_out .pytest_cache .ruff_cache
