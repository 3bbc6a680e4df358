# Two commands on a fresh machine: `make test` and `make run` (both install what they need).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch on this machine; the CUDA image installs its own build first.
TORCH_SPEC ?= torch==2.13.0
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install system-deps lint types test bench run run-demo faults clean

install: system-deps $(VENV)/.installed

system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	command -v ffprobe >/dev/null || missing="$$missing ffmpeg"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing with apt-get"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi
	@# Chromium only for the results page's browser test: without it that test skips.
	@command -v chromium >/dev/null || { \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends chromium \
	  || { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends chromium; } \
	  || echo "chromium could not be installed: the browser test will be skipped"; }

$(VENV)/.installed: pyproject.toml
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: install
	$(VENV)/bin/mypy shared worker bots stembot tests bench

test: install lint types
	$(PY) -m pytest -q

# Process faults only (worker killed/stopped, Redis restarted, cancel): real processes.
faults: install
	$(PY) -m pytest -q -m faults

bench: install
	$(PY) -m bench

run: install
	$(VENV)/bin/stembot run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# Offline try-out: random-weight models of the real architectures (the stems are noise,
# but every part runs for real). Real weights: unset STEMBOT_MODEL_REPO on a connected host.
run-demo: install
	$(PY) -c "from pathlib import Path; from tests.support.model_repo import write_model_repo; write_model_repo(Path('data/demo-models'))"
	STEMBOT_MODEL_REPO=data/demo-models $(VENV)/bin/stembot run
