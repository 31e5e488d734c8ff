# Two commands on a fresh machine: `make demo` and `make test` (each sets up .venv on first use).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast lint bench vectors clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e "clients/python[onnx]" -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/agentsdk demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not learning and not long"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/latency.py
	$(BIN)/python benchmarks/learn_cartpole.py

vectors: $(STAMP)
	$(BIN)/python tests/vectors/make_vectors.py

clean:
	rm -rf $(VENV) runs
