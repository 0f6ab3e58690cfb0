# Two set-up commands: `make demo` (main job) and `make test` (test suite).
# Each creates .venv if missing and installs torch explicitly first: a bare `torch` requirement
# would pull a multi-GB CUDA build, so the CPU build is pinned here (override: make test TORCH_SPEC=...).
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= demo_output

.PHONY: install demo test lint presets bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test,zh,tensorboard]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m recipes.demo --output_dir $(DEMO_DIR)

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

presets: install
	$(PY) -m toolkit.presets

bench: install
	$(PY) -m benchmarks.pretrain_throughput

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
