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

test: $(VENV)/.installed-test
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
