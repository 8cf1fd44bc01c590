# The two commands of the README: `make run` and `make test`.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PIP := $(BIN)/python -m pip install --disable-pip-version-check --quiet

# `make run` is for a developer's machine: a SECRET_KEY is generated and kept
# in instance/ unless one is given. Production sets its own environment.
export MESSENGER_ENV ?= development
export PORT ?= 8000

# The web command is read from the Procfile, so `make run` runs what Heroku runs.
WEB_COMMAND := $(shell sed -n 's/^web: *//p' Procfile)

.PHONY: run test lint typecheck migrate screenshots clean

run: $(VENV)/.installed-run
	$(BIN)/alembic upgrade head
	PATH="$(BIN):$$PATH" exec $(WEB_COMMAND)

test: $(VENV)/.installed-dev lint typecheck
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

migrate: $(VENV)/.installed-run
	$(BIN)/alembic upgrade head

# The README's pictures of every page, desktop and phone, in docs/screenshots/.
screenshots: $(VENV)/.installed-dev
	$(BIN)/python -m tests.browser.screenshots

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: requirements.txt | $(BIN)/python
	$(PIP) -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(PIP) -r requirements-dev.txt
	touch $@ $(VENV)/.installed-run
