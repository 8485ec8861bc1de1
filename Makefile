# The two commands: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo_output

.PHONY: demo test test-slow install install-test benchmarks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(VENV)/.installed: setup.py $(BIN)/python
	$(BIN)/python -m pip install -e .
	touch $@

$(VENV)/.installed-test: setup.py $(BIN)/python
	$(BIN)/python -m pip install -e ".[test]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(BIN)/python -m miseg.demo --output $(DEMO_DIR)

# As root without chromium, install Debian's package for the report's headless-browser test
# (playwright uses it; nothing is downloaded). If that fails the browser test says it did not run.
test: $(VENV)/.installed-test
	@if [ "$$(id -u)" = 0 ] && ! command -v chromium >/dev/null 2>&1; then \
		echo "make test: installing Debian's chromium for the report's browser test"; \
		export DEBIAN_FRONTEND=noninteractive; apt-get install -y chromium >/dev/null 2>&1 || (apt-get update >/dev/null 2>&1 && \
		apt-get install -y chromium >/dev/null 2>&1) || \
		echo "make test: could not install chromium; the report's browser test will not run"; fi
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest -q

# The long end-to-end runs (`@pytest.mark.slow`); .ci/run runs them after `make test`.
test-slow: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m slow

benchmarks: $(VENV)/.installed
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/inference.py
	$(BIN)/python benchmarks/training.py

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
