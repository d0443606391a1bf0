# FactoryFL: `make demo` and `make test` do all set-up on a fresh machine (Python 3.11; Debian for the
# browser tests' Chromium). Every step is idempotent.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHARTJS := dashboard/ui/static/vendor/chart.umd.js

.PHONY: install system-deps secrets demo test bench flower-venv clean

install: $(STAMP) $(CHARTJS)

# torch is pinned to 2.13.0 (CPU wheel); nothing else may pull a newer one.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) (set PYTHON=/path/to/python3.11)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@$(BIN)/python -c "import torch, syft; assert torch.__version__.startswith('2.13.0'), torch.__version__; assert syft.__version__ == '0.9.5'"
	touch $(STAMP)

# Front-end libraries come from the npm registry at build time and are served by the dashboard itself.
$(CHARTJS): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --silent
	mkdir -p $(dir $(CHARTJS))
	cp node_modules/chart.js/dist/chart.umd.js $(CHARTJS)

# Debian packages the tests need: Chromium and its driver for the browser tests (never a browser
# download), PostgreSQL for the production-topology tests (the tests start their own cluster).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium chromium-driver"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# docker compose reads its secrets from .env: random values, mode 0600, git-ignored; an existing .env is kept
# (only settings it lacks are added). `make demo` needs none: it makes development secrets under instance/.
secrets:
	python3 dashboard/cli/secrets_file.py .env

demo: install
	$(BIN)/python -m dashboard.demo

test: install system-deps
	$(BIN)/python -m pytest -q

bench: install flower-venv
	mkdir -p bench/results
	$(BIN)/python bench/rounds.py | tee bench/results/rounds.md
	$(BIN)/python bench/secagg.py | tee bench/results/secagg.md
	$(BIN)/python bench/quality.py | tee bench/results/quality.md
	$(BIN)/python bench/heartbeats.py | tee bench/results/heartbeats.md
	$(BIN)/python bench/fuzz.py | tee bench/results/fuzz.md
	$(BIN)/python bench/pages.py | tee bench/results/pages.md
	$(BIN)/python bench/plant_memory.py | tee bench/results/plant_memory.md
	$(BIN)/python bench/drift.py | tee bench/results/drift.md
	$(BIN)/python bench/startup.py | tee bench/results/startup.md
	$(BIN)/python bench/peers.py | tee bench/results/peers.md
	$(BIN)/python bench/verified_rounds.py | tee bench/results/verified_rounds.md
	$(BIN)/python bench/summary.py bench/results

# Flower, for bench/peers.py only: its own virtualenv (never beside PySyft's pins), torch 2.13.0 from the wheel on
# disk like .venv (bench/flower-constraints.txt: nothing may pull a newer torch; pandas 3 breaks shared.data).
FLOWER_VENV := bench/.flower-venv
flower-venv: $(FLOWER_VENV)/.installed

$(FLOWER_VENV)/.installed: bench/flower-constraints.txt
	test -d $(FLOWER_VENV) || $(PYTHON) -m venv $(FLOWER_VENV)
	$(FLOWER_VENV)/bin/pip install --quiet -c bench/flower-constraints.txt torch==2.13.0 flwr==1.41.0 pandas psutil safetensors
	@$(FLOWER_VENV)/bin/python -c "import torch, flwr; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $@

clean:
	rm -rf $(VENV) $(FLOWER_VENV) node_modules dashboard/ui/static/vendor instance logs state artifacts .pytest_cache
