# Each target is one command on a fresh clone; each makes its own virtualenv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test unit bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,sandbox]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/dr demo

test: $(VENV)/.installed
	./scripts/system-deps.sh
	$(BIN)/python -m pytest -q

unit: $(VENV)/.installed
	$(BIN)/python -m pytest -q tests/unit

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/retention_bench.py
	$(BIN)/python benchmarks/crypto_bench.py
	$(BIN)/python benchmarks/s3_diff_bench.py
	$(BIN)/python benchmarks/s3_bench.py
	$(BIN)/python benchmarks/mysql_bench.py
	$(BIN)/python benchmarks/runbook_bench.py
	$(BIN)/python benchmarks/mongo_bench.py
	$(BIN)/python benchmarks/report_bench.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
