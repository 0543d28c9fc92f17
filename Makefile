# `make demo` and `make test` are the README's two commands: each installs what it needs first.
VENV ?= .venv
CONSTRAINTS ?= constraints.txt
STAMP := $(VENV)/.installed
BIN := $(VENV)/bin

.PHONY: setup demo test docs lint check-studies clean

$(STAMP): pyproject.toml $(CONSTRAINTS)
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e '.[dev,jd]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/hpsearch run studies/demo.toml
	$(BIN)/hpsearch list
	$(BIN)/hpsearch show demo-digits-weight-decay --plot demo-pareto.png > /dev/null

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir "$$(mktemp -d)"
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --durations=20

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

check-studies: $(STAMP)
	$(BIN)/hpsearch check studies/*.toml

clean:
	rm -rf $(VENV) hpsearch.db .pytest_cache site
