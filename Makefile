# RefundChat: `make run` starts the portal, `make test` runs the whole suite.
# Without DATABASE_URL/REDIS_URL everything runs embedded (SQLite, filesystem broker).

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test lint typecheck schema pytest e2e screenshots messages compilemessages setup clean bench bench-upload bench-console bench-reports

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# Test and lint tools are the "dev" dependency group of pyproject.toml.
$(VENV)/.dev-installed: requirements.txt pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt --group dev
	touch $@ $(VENV)/.runtime-installed

check-tools:
	@command -v msgfmt >/dev/null || { echo "msgfmt is missing: install gettext (apt-get install gettext)"; exit 1; }
	@command -v ffmpeg >/dev/null || { echo "ffmpeg is missing: evidence videos and voice notes need it (apt-get install ffmpeg)"; exit 1; }

compilemessages: check-tools
	$(PY) manage.py compilemessages --ignore '.venv' -v0

# Refresh the catalogue after changing user-facing strings, then translate the new entries.
messages: $(VENV)/.dev-installed
	$(PY) manage.py makemessages -l zh_Hans --ignore '.venv/*' --ignore 'var/*' --ignore 'tests/*' --no-obsolete

setup: $(VENV)/.runtime-installed compilemessages
	$(PY) manage.py migrate_all -v0
	$(PY) manage.py seed_demo

run: setup
	@echo "RefundChat at http://127.0.0.1:$${REFUNDCHAT_PORT:-8000}  (Ctrl-C stops web, worker and beat)"
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/honcho start -f refundchat/Procfile -d .

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.dev-installed
	$(VENV)/bin/mypy .

pytest: $(VENV)/.dev-installed compilemessages
	$(PY) -m pytest

# The REST API's OpenAPI schema must generate without a warning and validate (docs/api.md); the live API is
# checked against it by schemathesis in tests/api/test_contract.py.
schema: $(VENV)/.dev-installed
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

test: lint typecheck schema pytest

# Browser tests only, saving screenshots of the main pages to docs/screenshots/.
screenshots: $(VENV)/.dev-installed compilemessages
	$(PY) -m pytest tests/e2e --screenshots

# Load benchmark on a real stack (Daphne, Redis layer, PostgreSQL, Celery worker and beat); docs/benchmarks.md.
# Needs DATABASE_URL (PostgreSQL) and REDIS_URL; uses its own database refundchat_bench and its own redis-server.
# `make bench BENCH_ARGS=--quick` is a smoke run; `BENCH_ARGS="--json var/bench.json"` also writes the figures.
bench: $(VENV)/.dev-installed compilemessages
	@test -n "$$DATABASE_URL" -a -n "$$REDIS_URL" || { echo "make bench needs DATABASE_URL (PostgreSQL) and REDIS_URL, e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/refundchat REDIS_URL=redis://127.0.0.1:6379/0 make bench"; exit 2; }
	$(PY) -m tests.load.bench $(BENCH_ARGS)

# The console's pages on 100,000 tickets and 1,000,000 messages (docs/benchmarks.md, "Console on 100,000 tickets").
# Needs a PostgreSQL DATABASE_URL; seeds (manage.py seed_bulk) its own database refundchat_bulk_bench once, then reuses
# it. `make bench-console BENCH_ARGS=--quick` is a smoke run on 2,000 tickets.
bench-console: $(VENV)/.dev-installed compilemessages
	@case "$$DATABASE_URL" in postgres*) ;; *) echo "make bench-console needs a PostgreSQL DATABASE_URL, e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/refundchat make bench-console"; exit 2;; esac
	$(PY) -m tests.load.console_bench $(BENCH_ARGS)

# The managers' report pages on 100,000 tickets (docs/benchmarks.md, "Reports on 100,000 tickets"). Needs a
# PostgreSQL DATABASE_URL; seeds its own database refundchat_reports_bulk once (manage.py seed_bulk), then reuses it.
# `make bench-reports BENCH_ARGS=--quick` is a smoke run on 2,000 tickets.
bench-reports: $(VENV)/.dev-installed compilemessages
	@case "$$DATABASE_URL" in postgres*) ;; *) echo "make bench-reports needs a PostgreSQL DATABASE_URL, e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/refundchat make bench-reports"; exit 2;; esac
	$(PY) -m tests.load.reports_bench $(BENCH_ARGS)

# Daphne's memory while a 200 MB video arrives over tus (docs/benchmarks.md, "Upload memory"); same needs as bench.
bench-upload: $(VENV)/.dev-installed check-tools
	@test -n "$$DATABASE_URL" -a -n "$$REDIS_URL" || { echo "make bench-upload needs DATABASE_URL (PostgreSQL) and REDIS_URL"; exit 2; }
	$(PY) -m tests.load.upload_bench $(BENCH_ARGS)

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
