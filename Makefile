# Gatehouse — the two commands: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
HOST ?= 127.0.0.1
WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
export GATEHOUSE_SIMULATOR_URL ?= http://127.0.0.1:$(PORT)/sim

.PHONY: run serve worker test test-services bench bench-finops lint migrate seed clean help

help:
	@echo "make run      set up and start Gatehouse on the embedded default (SQLite, no servers)"
	@echo "make test     set up and run the test suite"
	@echo "make bench    measure gateway overhead against the simulator"
	@echo "make bench-finops  seed 1M usage records (once) and time every FinOps page"
	@echo "make lint     ruff"

$(VENV)/.runtime: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Gatehouse needs Python 3.11 or newer")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

migrate: $(VENV)/.runtime
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo
	$(PY) manage.py seed_usage --org acme --records 15000 --days 90 --if-empty
	$(PY) manage.py evals_seed --once --organization acme --models gpt-4o-mini,claude-haiku-4-5,claude-sonnet-4-6,gemini-3.1-pro,gpt-5.5

# Starts the ASGI server (console, /v1 and the simulator), a Celery worker with
# beat, and a short burst of demo traffic so the console has data to show.
# Ctrl-C stops the three processes, waits for them and ends with status 0: the
# trap names only its own children (never `kill 0`, which also hits make itself).
run: seed
	@echo "Gatehouse on http://$(HOST):$(PORT)/  (console login: see the seed output above; Ctrl-C stops everything)"
	@trap 'trap - INT TERM; kill $$pids 2>/dev/null; wait $$pids 2>/dev/null; echo "Gatehouse stopped."; exit 0' INT TERM; \
	$(VENV)/bin/celery -A gatehouse worker --beat --loglevel=warning --concurrency=1 --without-gossip --without-mingle & pids="$$!"; \
	$(VENV)/bin/uvicorn gatehouse.asgi:application --host $(HOST) --port $(PORT) --workers $(WORKERS) \
		--loop uvloop --http httptools --no-access-log & pids="$$pids $$!"; \
	$(PY) manage.py demo_traffic --url http://127.0.0.1:$(PORT) & pids="$$pids $$!"; \
	wait

serve: migrate
	$(VENV)/bin/uvicorn gatehouse.asgi:application --host $(HOST) --port $(PORT) --workers $(WORKERS) \
		--loop uvloop --http httptools --no-access-log

worker: migrate
	$(VENV)/bin/celery -A gatehouse worker --beat --loglevel=info

test: $(VENV)/.dev
	@if [ -x /usr/bin/chromium ]; then echo "Browser tests: running in /usr/bin/chromium"; \
	else echo "Browser tests: SKIPPED — /usr/bin/chromium is not installed (apt-get install chromium)"; fi
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench-finops: $(VENV)/.dev
	@mkdir -p var/bench
	@test -f var/bench/bench.sqlite3 || (DATABASE_URL=sqlite:///$(CURDIR)/var/bench/bench.sqlite3 $(PY) manage.py migrate -v0 && \
	  DATABASE_URL=sqlite:///$(CURDIR)/var/bench/bench.sqlite3 $(PY) manage.py seed_usage)
	DATABASE_URL=sqlite:///$(CURDIR)/var/bench/bench.sqlite3 $(PY) bench/finops_pages.py $(BENCH_ARGS)

bench: $(VENV)/.dev
	$(PY) bench/routing.py $(if $(filter --quick,$(BENCH_ARGS)),--quick,)
	$(PY) bench/ledger.py --quick
	$(PY) bench/guard.py
	$(PY) bench/run.py $(BENCH_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --config .importlinter

clean:
	rm -rf var/test .pytest_cache
