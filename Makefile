# gnnrisk: `make run` runs the main job (the quick accuracy–privacy study), `make test` runs the tests.
# Both create the virtual environment and install everything on first use.
# TORCH_SPEC picks the torch build: the default pin installs the CPU wheel where it is cached locally
# and the standard (CUDA-enabled) wheel from PyPI elsewhere; override e.g. TORCH_SPEC="torch>=2.3".

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.gnnrisk-installed

.PHONY: setup run test test-fast figures clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,launchers]"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/gnnrisk-run -m experiment=quick

# The tests run on every CPU (pytest-xdist, one worker per CPU, each worker pinned to its CPU by tests/conftest.py;
# a test file stays on one worker, so its module fixtures are built once). PYTEST_WORKERS=0 runs them in this process.
# pytest exits 5 when it collects no test: treat that as a failure, not a pass.
PYTEST_WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

test: $(STAMP)
	$(PYTEST); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; exit $$rc

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

# The figures quoted in README.md, docs/ and experiments/*.md, rewritten from the committed result files
# (experiments/*_figures/*.csv); `make test` fails while one differs (tests/docs/test_figures.py).
figures: $(STAMP)
	$(BIN)/python experiments/figures.py

clean:
	rm -rf $(VENV) outputs .pytest_cache
