# The two set-up commands of the README: `make run` and `make test`. Each installs what it needs.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint services browser screenshots bench faults clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# PostgreSQL and RabbitMQ on this machine: installed (when root) and started when stopped.
services:
	@deploy/ensure-services.sh

# HELPDESK_DEMO=0 make run: no demo accounts.
run: $(STAMP) services
	deploy/create-databases.sh
	$(BIN)/python -m deploy.demo
	$(BIN)/honcho -f deploy/Procfile -d . start

# Tools of the tests, from Debian's packages, installed when missing and root: headless Chromium
# for the panel's browser tests (Playwright drives it through its executable path; `playwright
# install` is never used) and docker-compose, which validates docker-compose.yml offline.
browser:
	@deploy/ensure-debian-packages.sh /usr/bin/chromium:chromium /usr/bin/docker-compose:docker-compose

test: $(STAMP) services browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Re-make the README's screenshots (docs/screenshots/) with the panel's browser tests.
screenshots: $(STAMP) services browser
	UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest tests/panel/test_browser.py

# Benchmarks (slow, not part of make test): figures beside their ceilings, JSON and plots in
# bench/results/.
bench: $(STAMP) services
	@deploy/ensure-debian-packages.sh /usr/bin/wrk:wrk
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench

# The fault suite (slow, not part of make test): services on private PostgreSQL and RabbitMQ
# instances that it stops, restarts and kills, checking that nothing accepted is lost.
faults: $(STAMP) services
	HELPDESK_FAULTS=1 $(BIN)/python -m pytest tests/faults $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
