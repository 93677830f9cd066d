# make run    - the portal with its own slapd and mail catcher (dev stack)
# make test   - the whole test suite (what CI runs)
# make reset  - forget the dev stack's directory and mail
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_DEBS := slapd ldap-utils
TEST_DEBS := chromium apache2 dovecot-core dovecot-ldap libldap-dev libsasl2-dev gcc

.PHONY: run test reset debs-run debs-test

run: debs-run $(VENV)/.installed
	$(PY) -m app.devstack run

test: debs-run debs-test $(VENV)/.installed-test
	$(PY) -m pytest

reset:
	$(PY) -m app.devstack reset

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

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements.txt requirements-test.txt $(VENV)/.installed
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@
