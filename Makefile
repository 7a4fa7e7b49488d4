# The two newcomer commands are `make demo` and `make test`; both install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Where the real data lives; the code reads the same variable (see README, "Data").
export SHELFCAST_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: install system-deps node-deps test lint format demo bench clean image image-test

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

# Mosquitto is a real broker the integration tests start on a free port; its clients
# (mosquitto_pub / mosquitto_sub) are the tests' consumers and the latency benchmark's tills.
# Debian's Chromium is the browser the dashboard tests drive with Playwright (which cannot
# download a browser of its own here).
system-deps:
	@{ command -v mosquitto_pub >/dev/null 2>&1 && PATH="$$PATH:/usr/sbin" command -v mosquitto >/dev/null 2>&1; } || { \
	  echo "installing mosquitto (apt-get)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq mosquitto mosquitto-clients; \
	  else sudo -n apt-get update -qq && sudo -n apt-get install -y -qq mosquitto mosquitto-clients; fi; }
	@command -v npm >/dev/null 2>&1 || { \
	  echo "installing nodejs and npm (apt-get)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq nodejs npm; \
	  else sudo -n apt-get update -qq && sudo -n apt-get install -y -qq nodejs npm; fi; }
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (apt-get)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else sudo -n apt-get update -qq && sudo -n apt-get install -y -qq chromium; fi; }

# The official AsyncAPI parser (npm, Apache-2.0) validates docs/asyncapi.json in the tests; it is
# installed under var/node (not vendored). Needs Node.js and npm (apt-get install nodejs npm).
NODE_PREFIX := var/node
ASYNCAPI_PARSER := @asyncapi/parser@3.6.3

node-deps:
	@test -d $(NODE_PREFIX)/node_modules/@asyncapi/parser || { \
	  echo "installing $(ASYNCAPI_PARSER) (npm) under $(NODE_PREFIX)"; mkdir -p $(NODE_PREFIX); \
	  npm install --no-audit --no-fund --prefix $(NODE_PREFIX) $(ASYNCAPI_PARSER); }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Two workers (pytest-xdist), each taking whole test files (module fixtures stay shared): the
# tests use only ephemeral ports (disjoint per worker, tests/mosquitto.py) and their own tmp
# paths. Fixed at 2, not auto: many tests are CPU-bound or time brokers, and CI has 2 cores.
test: install system-deps node-deps lint
	PATH="$$PATH:/usr/sbin" $(BIN)/python -m pytest -n 2 --dist loadfile

demo: install system-deps
	PATH="$$PATH:/usr/sbin" $(BIN)/shelfcast demo

bench: install system-deps
	mkdir -p var/bench
	for b in benchmarks/*.py; do case $$b in *_worker.py|*/results_page.py) continue;; esac; \
	  PATH="$$PATH:/usr/sbin" $(BIN)/python $$b --json var/bench/$$(basename $$b .py).json || exit 1; done
	$(BIN)/python benchmarks/results_page.py

# The gateway image (Dockerfile.edge) with podman: no Docker engine or registry needed. Needs root
# (or sudo -n) for debootstrap, chroot and podman's vfs store; installs podman/debootstrap if absent.
# Not part of `make test`: the vfs build alone takes minutes (see README, "Gateway image").
AS_ROOT := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)

image:
	$(AS_ROOT) bash docker/build_image.sh

image-test: install system-deps image
	$(AS_ROOT) bash docker/export_rootfs.sh var/image/rootfs
	$(AS_ROOT) env PATH="$$PATH:/usr/sbin" $(BIN)/python docker/smoke.py var/image/rootfs --json var/image/smoke.json

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
