# Two commands on a fresh machine: `make test` and `make run` (both install what they need).
# The image's Python (the Dockerfile's PYTHON_VERSION) makes the venv where this host has it,
# so that CI, which runs `make test`, tests the minor version the image ships.
PYTHON_VERSION := $(shell sed -n 's/^ARG PYTHON_VERSION=//p' Dockerfile)
PYTHON ?= $(shell python$(PYTHON_VERSION) -c '' 2>/dev/null && echo python$(PYTHON_VERSION) || echo python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch on this machine; the CUDA image installs its own build first.
TORCH_SPEC ?= torch==2.13.0
# Without an NVIDIA GPU, torch comes from this index (PyPI's Linux wheels are CUDA builds,
# gigabytes more) when it answers within seconds; else from pip's usual sources.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
# Where `make lock` finds the CPU build of torch to resolve against (a folder of wheels works).
TORCH_FIND_LINKS ?= $(TORCH_CPU_INDEX)/torch/
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install system-deps lint lock types test bench bench-scale run run-demo faults clean messages

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
	@want="$(TORCH_SPEC)"; want="$${want#torch==}"; \
	have="$$($(PY) -c 'from importlib.metadata import version; print(version("torch"))' 2>/dev/null)"; \
	if [ -n "$$have" ] && [ "$${have%%+*}" = "$$want" ]; then \
	  echo "torch $$have is installed"; \
	elif nvidia-smi -L >/dev/null 2>&1; then \
	  echo "NVIDIA GPU: $(TORCH_SPEC) (a CUDA build) from pip's usual sources"; \
	  $(PY) -m pip install -q "$(TORCH_SPEC)"; \
	elif timeout 10 $(PY) -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
	    "$(TORCH_CPU_INDEX)/torch/" >/dev/null 2>&1; then \
	  echo "no NVIDIA GPU: $(TORCH_SPEC), the CPU build, from $(TORCH_CPU_INDEX)"; \
	  $(PY) -m pip install -q --index-url "$(TORCH_CPU_INDEX)" "$(TORCH_SPEC)"; \
	else \
	  echo "$(TORCH_CPU_INDEX) unreachable: $(TORCH_SPEC) from pip's usual sources"; \
	  $(PY) -m pip install -q "$(TORCH_SPEC)"; \
	fi
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/deptry .
	@# the tests and benchmarks too: they may use the dev extra, but nothing undeclared
	$(VENV)/bin/deptry . --exclude '\.venv|venv|build|\.git' --ignore DEP002,DEP004

# requirements.lock: the main dependencies with hashes, for the image's Python on Linux, which
# the Docker build installs. Without torch: each image installs its build (CPU or CUDA) first.
# Resolved against the CPU build (PyPI's torch would pull CUDA packages in): TORCH_FIND_LINKS.
lock: install
	echo "$(TORCH_SPEC)+cpu" > $(VENV)/torch-cpu.txt
	$(VENV)/bin/uv pip compile pyproject.toml --quiet --generate-hashes \
	  --python-version $(PYTHON_VERSION) --python-platform x86_64-manylinux_2_28 \
	  --find-links "$(TORCH_FIND_LINKS)" --override $(VENV)/torch-cpu.txt \
	  --no-emit-package torch --custom-compile-command "make lock" -o requirements.lock

types: install
	$(VENV)/bin/mypy shared worker bots stembot tests bench

test: install lint types
	$(PY) -m pytest -q

# Process faults only (worker killed/stopped, Redis restarted, cancel): real processes.
faults: install
	$(PY) -m pytest -q -m faults

# The language catalogues after texts changed in the code: extract, merge, fill English.
messages: install
	$(PY) -m shared.i18n.catalogs

bench: install
	$(PY) -m bench
	$(PY) -m pytest -q -m bench

# Many users at once through both fake platforms against SCALE_WORKERS worker processes
# (bench/scale.py): one run per N in SCALE_USERS, the table compares them.
SCALE_USERS ?= 10 500
SCALE_WORKERS ?= 2
bench-scale: install
	for n in $(SCALE_USERS); do \
	  $(PY) -m bench.scale --users $$n --workers $(SCALE_WORKERS) || exit 1; \
	done

run: install
	$(VENV)/bin/stembot run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# Offline try-out: random-weight models of the real architectures (the stems are noise,
# but every part runs for real). Real weights: `stembot models pull htdemucs` on a connected
# host, with STEMBOT_MODEL_REPO unset.
run-demo: install
	$(VENV)/bin/stembot models demo data/demo-models
	STEMBOT_MODEL_REPO=data/demo-models $(VENV)/bin/stembot run
