# rtm-console: set up and run the console, or set up the test services and run the suite.
#
#   make run [ARGS='...']          virtualenv + start rtm-console
#   make test [PYTEST_ARGS='...']  install + start the test services, run pytest, stop what it started
#   make services-up / services-down / services-status
#   make venv                      .venv with the project (editable) and its test extras
#   make bench                     benchmarks (bench/run_all.sh)

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
SERVICES := scripts/services.sh
SERVICES_DIR ?= $(or $(RTM_SERVICES_DIR),$(CURDIR)/.services)
PYTEST_ARGS ?=
ARGS ?=

# The libvirt binding compiles against libvirt's headers: take it when they are installed
# (`make test` installs them first), leave it out otherwise so `make run` works anywhere.
EXTRAS = $(shell pkg-config --exists libvirt 2>/dev/null && echo test,libvirt || echo test)
VENV_STAMP = $(VENV)/.installed-$(EXTRAS)

.PHONY: venv bytecode run test services-install services-up services-down services-status bench

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[$(EXTRAS)]'
	rm -f $(VENV)/.installed-*
	touch $@

# An editable install leaves the project's modules to be compiled at import, on every start where
# PYTHONDONTWRITEBYTECODE is set (~140 ms of the console's start-up): compile them, as pip does
# for a regular install. Files already compiled and unchanged are skipped.
bytecode: venv
	$(VENV)/bin/python -m compileall -q console backends rtm themes

run: bytecode
	$(VENV)/bin/rtm-console $(ARGS)

services-install:
	$(SERVICES) install

services-up: services-install
	$(MAKE) --no-print-directory venv
	$(SERVICES) up

services-down:
	$(SERVICES) down

services-status:
	$(SERVICES) status

# One shell, so the services this run started are stopped whatever happens; make fails exactly
# when pytest does (make's own code is 2; the "pytest exited" line gives pytest's). The owner
# tag makes `down` stop only what this run started: services already up stay up.
test:
	@export RTM_SERVICES_OWNER=make-test-$$$$; status=0; \
	$(SERVICES) install && $(MAKE) --no-print-directory venv && $(SERVICES) up || status=$$?; \
	if [ $$status -eq 0 ]; then \
		(set -a; . "$(SERVICES_DIR)/env"; set +a; exec $(VENV)/bin/pytest $(PYTEST_ARGS)) || status=$$?; \
		echo "pytest exited with status $$status"; \
	else \
		echo "services did not come up (exit $$status): tests not run" >&2; \
	fi; \
	$(SERVICES) down || true; \
	exit $$status

bench: bytecode
	@if [ -f bench/run_all.sh ]; then bash bench/run_all.sh; else echo "bench/run_all.sh not present yet"; fi
