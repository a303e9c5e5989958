# Each target is one command on a fresh clone; each makes its own virtualenv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test unit bench lint clean

$(BIN)/python:
	@echo "creating $(VENV) (python: $(PYTHON))"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The demo needs dr and the sandbox (moto) only; the tests add their toolchain on top.
$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	@echo "installing dr and its sandbox into $(VENV) (about a minute on a fresh clone)"
	$(BIN)/pip install --progress-bar on -e '.[sandbox]' | grep -v '^Requirement already satisfied' || true
	@$(BIN)/python -c "import dr, moto" && touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.installed-demo
	@echo "installing the test toolchain into $(VENV)"
	$(BIN)/pip install --progress-bar on -e '.[test,sandbox]' | grep -v '^Requirement already satisfied' || true
	@$(BIN)/python -c "import dr, moto, pytest" && touch $@

demo: $(VENV)/.installed-demo
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
