# FactoryFL: `make demo` and `make test` do all set-up on a fresh machine (Python 3.11).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench clean

install: $(STAMP)

# Idempotent: re-runs only when a requirements file changes. torch is pinned to 2.13.0 (CPU wheel);
# nothing else may pull a newer one.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) (set PYTHON=/path/to/python3.11)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@$(BIN)/python -c "import torch, syft; assert torch.__version__.startswith('2.13.0'), torch.__version__; assert syft.__version__ == '0.9.5'"
	touch $(STAMP)

demo: install
	$(BIN)/python -m dashboard.demo

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/rounds.py

clean:
	rm -rf $(VENV) instance logs state artifacts .pytest_cache
