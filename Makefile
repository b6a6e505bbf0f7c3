# kugeldrill: `make drill` (a short drill suite on the embedded stand-in, real daprd sidecars) and `make test`.
SHELL := /bin/bash
VENV  := .venv/bin
export PATH := $(CURDIR)/tools/bin:$(PATH)

# tools/bin/actionlint is a file target: built once.
.PHONY: setup daprd-1.16 test test-unit drill bench mutants breaker-repeat explore-check soak heal clean kugelpos bench-kugelpos

KUGELPOS_SRC ?= ../shared/kugelpos-backend
# The GitHub Actions workflow's linter (make test runs it: tests/unit/test_ci_workflow.py).
ACTIONLINT_VERSION := v1.7.12

setup:
	@scripts/setup.sh

# Opt-in: daprd 1.16.0 (the <= 1.16 ack model) as tools/bin/daprd-1.16, for `--ack-model 1.16` and
# the tests of that model (skipped without it; .ci/run builds it). First build about 3 CPU-minutes.
daprd-1.16:
	@scripts/build-daprd.sh 1.16

# Two workers, a test file each at a time (module fixtures stay in one process): the
# integration tests mostly wait on drills, so two at once halve the wall time on 2 cores.
# Tests marked `alone` (the real Kugelpos services, whose load figures need an idle machine)
# run afterwards, by themselves; the exit code fails if either part failed.
test: setup tools/bin/actionlint
	@$(VENV)/python -m pytest -q -n 2 --dist loadfile -m "not alone" --durations=25; parallel=$$?; \
	$(VENV)/python -m pytest -q -m alone --durations=5; alone=$$?; \
	exit $$(( parallel || alone ))

test-unit: setup tools/bin/actionlint
	@$(VENV)/python -m pytest -q tests/unit

# Built once with Go, kept in tools/bin; without Go the workflow test says it cannot lint.
tools/bin/actionlint:
	@if command -v go >/dev/null 2>&1; then \
		echo "setup: installing actionlint $(ACTIONLINT_VERSION) into tools/bin ..."; \
		GOBIN=$(CURDIR)/tools/bin go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION) \
			|| echo "setup: go install of actionlint failed; the workflow lint test will fail"; \
	else echo "setup: no Go: actionlint not installed"; fi

drill: setup
	@$(VENV)/kugeldrill run --suite ci

bench: setup
	@for b in bench/checkers.py bench/load.py bench/sidecar.py bench/stack.py; do echo "== $$b"; $(VENV)/python $$b || exit 1; done

# Planted defects in the stand-in's source, each through the drill that should expose it
# (about 15 minutes): bench/results/mutants.json.
mutants: setup
	@$(VENV)/python bench/mutants.py

# The breaker checker on real drills: threshold − 1 and 3x the reset caught, the healthy
# breaker passing 10 times in a row (about 6 minutes): bench/results/breaker.json.
breaker-repeat: setup
	@$(VENV)/python bench/mutants.py --only breaker-opens-one-early,breaker-open-3x-reset \
		--repeat-healthy mut-sidecar-cut=10 --out bench/results/breaker.json

# Explore + shrink against planted defects (breaker, duplicate, fan-out) and the healthy
# stand-in, each explore within 5 minutes (about 35 minutes): bench/results/explore.json.
explore-check: setup
	@$(VENV)/python bench/explore_check.py

# One hour of the soak scenario on the stand-in (its ten-minute fault plan six times), watched
# from outside: peak RSS of the drill and its processes, the run folder's size per hour, the
# check phase's seconds, the verdict: bench/results/soak.json. SOAK=3m for a short proof.
SOAK ?= 1h
soak: setup
	@$(VENV)/python bench/soak.py --duration $(SOAK)

# Build (or find cached) what `kugeldrill kugelpos up` needs for a Kugelpos checkout: each
# service's environment from its Pipfile.lock and the MongoDB server. Starts nothing.
kugelpos: setup
	@$(VENV)/kugeldrill kugelpos up --prepare-only --src $(KUGELPOS_SRC)

# The real Kugelpos' pace, natively (about 18 minutes): Kugelpos' own performance client and
# kugeldrill's CartUser, CPU per sale by process, medians of 3 rounds: bench/results/kugelpos.json.
bench-kugelpos: setup
	@$(VENV)/python bench/kugelpos.py --src $(KUGELPOS_SRC)

heal: setup
	@$(VENV)/kugeldrill heal

clean:
	rm -rf runs .pytest_cache
