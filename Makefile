# Accord: `make run` to try it, `make test` to check it. See README.md.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
SCALE  ?= default

.PHONY: run test install migrate seed serve bench clean check-python

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Accord needs Python 3.11 or newer (set PYTHON=python3.11)")'

$(BIN)/python: | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Reinstall only when requirements.txt changes.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $@

install: $(VENV)/.installed

# The embedded default: SQLite file in the project, Celery eager, development settings.
run: export DEBUG ?= true
run: install
	$(MANAGE) migrate --noinput
	$(MANAGE) seed_demo --if-empty
	@echo "Accord is at http://127.0.0.1:8000 (Ctrl-C to stop)"
	$(MANAGE) runserver 127.0.0.1:8000

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench --scale $(SCALE) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles test-artifacts
