# Photoscale: `make run` starts the whole system on one machine; `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast install web bench lint clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# The web client: content-hashed assets in edge/dist (served by the local edge and published to S3).
web: install
	$(PY) edge/build.py

run: install web
	$(PY) -m devstack.run

test: install web
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest tests/unit tests/functional

bench: install
	$(PY) bench/coldstart.py
	$(PY) bench/renditions.py
	$(PY) bench/scale_sim.py
	$(PY) bench/roundtrips.py --json artifacts/roundtrips.json
	$(PY) bench/planner.py --dau 1000000
	$(PY) bench/load.py --users 8 --seconds 60 --json artifacts/load.json

lint: install
	$(VENV)/bin/cfn-lint infra/*.yaml

clean:
	rm -rf $(VENV) .pytest_cache artifacts .devstack
