# Two commands do all set-up on a fresh machine:
#   make demo   create .venv, install, run the demo on the shipped real data, serve the map on :8000
#   make test   install what the tests need (chromium via apt when root), run ruff, mypy, the import-layer
#               contract and the whole suite
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed-stamp

.PHONY: install system-deps demo test lint bench train clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing chromium (apt) for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium missing and not root: the browser test will be skipped (install the apt package chromium)"; fi

demo: install
	$(VENV)/bin/geovigie demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python tools/check_package.py all

test: install system-deps lint
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider

bench: install
	$(VENV)/bin/python benchmarks/inference_throughput.py

train: install
	$(VENV)/bin/geovigie train-landcover

clean:
	rm -rf $(VENV) geovigie-data
