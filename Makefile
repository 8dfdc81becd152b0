# Two commands after cloning: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow lint bench clean

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

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest_stream.py

clean:
	rm -rf $(VENV) runs benchmarks/_data
