# The README's two commands. Both create or refresh .venv idempotently (scripts/bootstrap.sh).
.PHONY: demo test lint format setup-demo setup-test frontend

VENV := .venv
BIN := $(VENV)/bin

setup-demo:
	@bash scripts/bootstrap.sh demo

# The ViRelAy viewer the interoperability tests start lives in its own .venv-virelay, LXT 2.1
# (the AttnLRP reference of tests/attribution/test_lxt_reference.py) in its own .venv-lxt.
setup-test:
	@bash scripts/bootstrap.sh test
	@bash scripts/setup_virelay.sh
	@bash scripts/setup_lxt.sh

# The Explorer front end (frontend/) is rebuilt only when its sources changed.
frontend:
	@bash scripts/build_frontend.sh

demo: setup-demo frontend
	$(BIN)/relscope demo

lint: setup-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
test: lint frontend
	cd frontend && npm test --silent
	@$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; \
	exit $$rc
