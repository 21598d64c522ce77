# Two entry points: `make demo` (the main job on the embedded digits set) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test docs clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e .
	touch $@

# the dev, ray, timm, dp and robustbench extras (the Ray backend, timm architectures, DP-SGD and RobustBench's zoo are tested), plus the test oracles torchattacks (--no-deps: its requests pin would downgrade
# others) and convex-adversarial (bounds of Wong & Kolter; a test oracle, never a runtime dependency)
$(VENV)/.dev: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev,ray,timm,dp,robustbench]'
	$(BIN)/pip install --quiet --no-deps torchattacks==3.5.1 convex-adversarial==0.4.4
	touch $@

# the whole paper at toy scale: tables, figures and runs/quick/report/report.html
demo: $(VENV)/.installed
	$(BIN)/robustmia reproduce quick --out runs/quick --resume

# the suite in TEST_WORKERS processes of one thread each (pytest-xdist), shared out as tests/conftest.py says
TEST_WORKERS ?= 2
test: $(VENV)/.dev
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=25

# the documentation site into site/ (broken links, missing pages and docstring references fail)
docs: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[docs]'
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

clean:
	rm -rf $(VENV) runs site .pytest_cache
