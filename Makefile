# Two commands do all the set-up: `make demo` and `make test`. Both create .venv when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# openai-whisper and the converter of transformers weights need torch; pinning the CPU release keeps the test environment from pulling a
# multi-GB CUDA build. Override with TORCH=... where another build is wanted.
TORCH ?= torch==2.13.0
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet

.PHONY: demo test lint bench clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "python3 is missing: install it (sudo apt-get install python3 python3-venv)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11 or newer is needed, found $$($(PYTHON) --version 2>&1): install it and run make PYTHON=python3.11"; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' >/dev/null 2>&1 || { echo "python3-venv is missing: install it (sudo apt-get install python3-venv)"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "could not create $(VENV): install python3-venv (sudo apt-get install python3-venv)"; exit 1; }
	@$(PIP) install --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install "$(TORCH)"
	$(PIP) install -e '.[openai,convert,dev]'
	@touch $@ $(VENV)/.installed-run

# axe-core, which the browser tests run over the review page and the delivery page (WCAG 2.1 A and AA):
# from npm into the test environment, where the tests look for it.
AXE_CORE ?= 4.14.1
AXE := $(VENV)/axe/node_modules/axe-core/axe.min.js
$(AXE): | $(BIN)/python
	@command -v npm >/dev/null 2>&1 || { echo "npm is missing: install it (sudo apt-get install npm)"; exit 1; }
	npm install --prefix $(VENV)/axe --no-save --no-audit --no-fund --loglevel=error axe-core@$(AXE_CORE)

demo: $(VENV)/.installed-run
	$(BIN)/hearing demo --out demo-output
	@echo "The delivery of the demo meeting is in demo-output/delivery/"

lint: $(VENV)/.installed-test
	$(BIN)/ruff check pipeline tests samples bench
	$(BIN)/ruff format --check pipeline tests samples bench
	$(BIN)/mypy

# With a system ffmpeg on PATH the suite runs with it (as on an organiser's laptop); the end-to-end tests
# then run once more with the bundled one, so both are known to deliver.
# (not the engines' own tests again, nor killing and resuming: what they check does not depend on ffmpeg;
# nor the test that itself runs the system and the bundled ffmpeg side by side)
E2E_TESTS ?= tests/test_clip.py tests/test_run.py tests/test_laptop.py
E2E_SELECT ?= not openai and not from_scratch and not system_and_the_bundled
test: lint $(AXE)
	$(BIN)/python -m pytest --durations=25
	@if command -v ffmpeg >/dev/null 2>&1 && [ -z "$$HEARING_FFMPEG" ]; then \
	    bundled="$$($(BIN)/python -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')"; \
	    echo "== the end-to-end tests again with the bundled ffmpeg ($$bundled)"; \
	    HEARING_FFMPEG="$$bundled" $(BIN)/python -m pytest -m slow -k "$(E2E_SELECT)" $(E2E_TESTS); \
	fi

# Benchmarks are not tests: they take minutes (the large model shapes about an hour) and write gigabytes to the
# temporary folder; the model shapes are made once into the user's cache (2.4 GB).
BENCHES ?= bench/accuracy_bench.py bench/engines_bench.py bench/pipeline_bench.py bench/render_bench.py bench/review_bench.py bench/watch_bench.py bench/archive_bench.py bench/large_bench.py
bench: $(VENV)/.installed-test
	@for script in $(BENCHES); do echo "== $$script"; $(BIN)/python $$script || exit 1; done
	@$(BIN)/python bench/summary.py

clean:
	rm -rf demo-output test-output .pytest_cache .mypy_cache .ruff_cache
