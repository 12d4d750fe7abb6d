# Two commands set everything up on a fresh machine:
#   make run    builds the venv, then runs the main job on the embedded default benchmark
#   make test   builds the venv, checks the layers (lint-imports), then runs the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU torch first: a plain `torch` requirement would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
ALGO ?= ppo

.PHONY: run test venv clean

$(BIN)/harness: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[test,tensorboard,wandb,ray,postgres]"
	touch $@

venv: $(BIN)/harness

run: venv
	$(BIN)/harness run --algo $(ALGO)
	$(BIN)/harness leaderboard

test: venv
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) results/store.sqlite results/runs
