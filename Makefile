# The two set-up commands of the README: `make run` and `make test`. Each installs what it needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# What running needs (make run), then the tools of the tests, lint and benchmarks on top.
RUN_STAMP := $(VENV)/.run-installed
DEV_STAMP := $(VENV)/.dev-installed

.PHONY: run test lint services browser screenshots bench faults clean

# The virtual environment, with Debian's python3.11-venv installed first when it is missing; a
# venv left without pip by an interrupted run is made again.
$(BIN)/pip:
	@deploy/ensure-venv.sh $(PYTHON) $(VENV)

$(RUN_STAMP): pyproject.toml | $(BIN)/pip
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

# Both at once when the tests come first: one resolution instead of two.
$(DEV_STAMP): pyproject.toml | $(BIN)/pip
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(RUN_STAMP) $@

# PostgreSQL and RabbitMQ on this machine: installed (when root) and started when stopped.
services:
	@deploy/ensure-services.sh

# HELPDESK_DEMO=0 make run: no demo accounts.
run: $(RUN_STAMP) services
	deploy/create-databases.sh
	$(BIN)/python -m deploy.demo
	@deploy/run-env.sh var/run.env
	$(BIN)/honcho -f deploy/Procfile -e var/run.env -d . start

# Tools of the tests, from Debian's packages, installed when missing and root: headless Chromium
# for the panel's browser tests (Playwright drives it through its executable path; `playwright
# install` is never used); docker-compose, nginx, shellcheck and kubectl, which check the
# deployment files offline (tests/deploy).
browser:
	@deploy/ensure-debian-packages.sh /usr/bin/chromium:chromium /usr/bin/docker-compose:docker-compose \
		/usr/sbin/nginx:nginx /usr/bin/shellcheck:shellcheck /usr/bin/kubectl:kubernetes-client

# The suite in parallel (pytest-xdist), a file per worker at a time: a file's module-scoped
# stacks are made once, and the gateway's fixed addresses are bound by one worker. Its tests wait
# on PostgreSQL, RabbitMQ and their own processes about as much as they compute, so there are
# more workers than cores. PYTEST_ARGS come after and win: PYTEST_ARGS="-n 0" runs in one process.
TEST_WORKERS ?= -n 3 --dist loadfile

test: $(DEV_STAMP) services browser
	$(BIN)/python -m pytest $(TEST_WORKERS) --durations=10 $(PYTEST_ARGS)

# Re-make the README's screenshots (docs/screenshots/) with the panel's browser tests.
screenshots: $(DEV_STAMP) services browser
	UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest -n 0 tests/panel/test_browser.py tests/panel/test_console.py

# Benchmarks (slow, not part of make test): figures beside their ceilings, JSON and plots in
# bench/results/.
bench: $(DEV_STAMP) services
	@deploy/ensure-debian-packages.sh /usr/bin/wrk:wrk
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench

# The fault suite (slow, not part of make test): services on private PostgreSQL and RabbitMQ
# instances that it stops, restarts and kills, checking that nothing accepted is lost. In one
# process (-n 0): its scenarios share those instances and each measures them alone.
faults: $(DEV_STAMP) services
	HELPDESK_FAULTS=1 $(BIN)/python -m pytest -n 0 tests/faults $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
