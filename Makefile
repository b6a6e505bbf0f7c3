# kugeldrill: `make drill` (a short drill suite on the embedded stand-in) and `make test`.
SHELL := /bin/bash
VENV  := .venv/bin
export PATH := $(CURDIR)/tools/bin:$(PATH)

.PHONY: setup test test-unit drill bench mutants heal clean

setup:
	@scripts/setup.sh

test: setup
	@$(VENV)/python -m pytest -q

test-unit: setup
	@$(VENV)/python -m pytest -q tests/unit

drill: setup
	@$(VENV)/kugeldrill run --suite ci

bench: setup
	@for b in bench/checkers.py bench/load.py bench/sidecar.py bench/stack.py; do echo "== $$b"; $(VENV)/python $$b || exit 1; done

# Planted defects in the stand-in's source, each through the drill that should expose it
# (about 15 minutes): bench/results/mutants.json.
mutants: setup
	@$(VENV)/python bench/mutants.py

heal: setup
	@$(VENV)/kugeldrill heal

clean:
	rm -rf runs .pytest_cache
