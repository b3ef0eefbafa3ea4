# Photoscale: `make run` starts the whole system on one machine; `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast install web bench lint clean package package-venv deploy

$(STAMP): requirements.txt requirements-imaging.txt requirements-dev.txt
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

test: install web package-venv
	$(PY) -m pytest -n 2 --dist loadgroup  # loadgroup: the failover drill's tests share one worker (and one two-region stack)

test-fast: install
	$(PY) -m pytest tests/unit tests/functional

bench: install package-venv
	$(PY) bench/coldstart.py
	$(PY) bench/coldstart.py --package
	$(PY) bench/renditions.py
	$(PY) bench/scale_sim.py
	$(PY) bench/roundtrips.py --json artifacts/roundtrips.json
	$(PY) bench/cache_effect.py
	$(PY) bench/planner.py --dau 1000000
	$(PY) bench/load.py --users 8 --seconds 60 --json artifacts/load.json

lint: install
	$(VENV)/bin/cfn-lint infra/*.yaml

# infra/observability.yaml is generated from app.py, infra/stateful.yaml and .chalice/config.json.
.PHONY: observability
observability: install
	$(PY) -m infra.observability --write

# ---- Deploy path (README "Deploy to AWS"). The Lambda runtime is declared once, in infra/deploy.json;
# Chalice targets the Python it runs on, so packaging runs in .venv-package made from that Python.
STAGE ?= prod
LAMBDA_PY := $(shell sed -n 's/.*"runtime": *"python\([0-9.]*\)".*/\1/p' infra/deploy.json)
PACKAGE_PYTHON ?= $(shell infra/find_python.sh $(LAMBDA_PY))
PKG_VENV := .venv-package
PKG_STAMP := $(PKG_VENV)/.installed

$(PKG_STAMP): requirements.txt requirements-package.txt
	@test -n "$(PACKAGE_PYTHON)" || { echo "error: packaging needs Python $(LAMBDA_PY) (the Lambda runtime in infra/deploy.json); install it (e.g. pyenv install $(LAMBDA_PY)) or pass PACKAGE_PYTHON=/path/to/python$(LAMBDA_PY)" >&2; exit 1; }
	test -x $(PKG_VENV)/bin/python || $(PACKAGE_PYTHON) -m venv $(PKG_VENV)
	$(PKG_VENV)/bin/python -m pip install --quiet -r requirements-package.txt
	touch $(PKG_STAMP)

package-venv: $(PKG_STAMP)

# build/package/$(STAGE): deployment.zip, imaging-layer.zip (workers only), sam.json. Cached on its inputs.
package: $(PKG_STAMP)
	$(PKG_VENV)/bin/python -m infra.package --stage $(STAGE) $(if $(REGION),--region $(REGION))

# One command for the whole `chalice deploy` path: policies, layer, chalice deploy, post-deploy.
deploy: $(PKG_STAMP)
	$(PKG_VENV)/bin/python -m infra.deploy --stage $(STAGE)

clean:
	rm -rf $(VENV) $(PKG_VENV) .pytest_cache artifacts .devstack build
