# make run    - the portal with its own slapd and mail catcher (dev stack)
# make test   - lint (ruff), then the whole test suite (what CI runs)
# make lint   - ruff only
# make reset  - forget the dev stack's directory and mail
# make messages - extract the strings and update the catalogs in translations/
# make test-containers - only the image and compose tests (part of make test)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_DEBS := slapd ldap-utils redis-server nginx
TEST_DEBS := chromium apache2 dovecot-core dovecot-ldap libldap-dev libsasl2-dev gcc iproute2

# What ruff checks.
LINT_PATHS ?= app tests
PYBABEL := $(VENV)/bin/pybabel
AXE := tests/node_modules/axe-core/axe.min.js
CATALOGS := $(wildcard translations/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGS:.po=.mo)
# Image builds and runs without a Docker engine or registry (tests/test_containers.py).
CONTAINER_DEBS := podman runc debootstrap podman-compose golang-github-containernetworking-plugin-dnsname openssl
CONTAINER_BASE := localhost/debian:bookworm

.PHONY: run test test-containers lint reset debs-run debs-test debs-containers container-base \
	messages messages-compile debs-npm

run: debs-run $(VENV)/.installed messages-compile
	$(PY) -m app.devstack run

test: debs-run debs-test debs-containers container-base $(VENV)/.installed-test $(AXE) messages-compile
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(PY) -m pytest

test-containers: debs-run debs-containers container-base $(VENV)/.installed-test
	$(PY) -m pytest tests/test_containers.py

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check $(LINT_PATHS)

reset:
	$(PY) -m app.devstack reset

# Translations: the .po files are the source; .mo files are built from them.
messages: $(VENV)/.installed
	$(PYBABEL) extract -F babel.cfg -k _l -k lazy_gettext --no-location \
	  --project=portal -o translations/messages.pot .
	$(PYBABEL) update -i translations/messages.pot -d translations -w 76 \
	  --ignore-obsolete --no-fuzzy-matching
	$(MAKE) messages-compile

messages-compile: $(COMPILED)

translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po | $(VENV)/.installed
	$(PYBABEL) compile -l $* -i $< -o $@

# Debian packages: installed with apt when running as root, otherwise named.
define need_debs
	@missing=""; for pkg in $(1); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$pkg"; \
	done; \
	if ! $(PYTHON) -c 'import venv, ensurepip' 2>/dev/null; then missing="$$missing python3-venv"; fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian packages:$$missing"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "Missing Debian packages:$$missing"; echo "Install them with: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi
endef

debs-run:
	$(call need_debs,$(RUN_DEBS))

debs-test:
	$(call need_debs,$(TEST_DEBS))

debs-npm:
	$(call need_debs,npm)

debs-containers:
	$(call need_debs,$(CONTAINER_DEBS))

# The base image of the container tests, made once with debootstrap (no registry needed).
container-base: debs-containers
	@sh containers/base-image.sh $(CONTAINER_BASE)

# axe-core (the accessibility checker the browser tests inject), pinned in tests/package.json.
# npm: Debian's package unless a node.js install brought its own.
$(AXE): tests/package.json tests/package-lock.json
	@command -v npm >/dev/null || $(MAKE) --no-print-directory debs-npm
	cd tests && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements.txt requirements-test.txt $(VENV)/.installed
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

# make bench - the performance harness (bench/README.md; not part of make test):
# BENCH_MEMBERS=100000 by default, BENCH_QUICK=1 (or make bench-quick) for 10k members.
.PHONY: bench bench-quick
bench: debs-run $(VENV)/.installed messages-compile
	$(PY) bench/run.py $(if $(filter 1,$(BENCH_QUICK)),--quick,)

bench-quick: debs-run $(VENV)/.installed messages-compile
	$(PY) bench/run.py --quick

# What one request costs the portal's own process (CPU, directory operations).
.PHONY: bench-cost
bench-cost: debs-run $(VENV)/.installed messages-compile
	$(PY) bench/cost.py
