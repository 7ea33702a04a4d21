# Two commands do all set-up on a fresh machine:
#   make demo   create .venv, install (apt postgresql + postgis for the STAC API when root), run the demo on the shipped real data, serve the map on :8000
#               (make demo PORT=8080: another port)
#   make test   install what the tests need (apt chromium, postgresql + postgis, mapserver-bin when root), run ruff, mypy, the import-layer
#               contract and the whole suite
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed-stamp
PORT ?=

.PHONY: install system-deps demo-deps demo test lint bench train clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# apt packages: the STAC API's PostgreSQL + PostGIS (demo and tests); Chromium and MapServer (tests only)
define apt_install
	@missing=""; \
	for pkg in $(1); do case $$pkg in \
		chromium) [ -x /usr/bin/chromium ] || missing="$$missing chromium";; \
		mapserver-bin) [ -x /usr/bin/mapserv ] || missing="$$missing mapserver-bin";; \
		postgresql) ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql";; \
		postgis) ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || missing="$$missing postgis";; \
	esac; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "installing (apt):$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "missing apt packages:$$missing; not root, so not installed: install them (without PostgreSQL the" \
		"STAC API needs GEOVIGIE_DATABASE_URL; tests needing the others are skipped)"; fi
endef

demo-deps:
	$(call apt_install,postgresql postgis)

system-deps:
	$(call apt_install,postgresql postgis chromium mapserver-bin)

demo: install demo-deps
	$(VENV)/bin/geovigie demo $(if $(PORT),--port $(PORT))

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python tools/check_package.py all

test: install system-deps lint
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider

bench: install
	GDAL_CACHEMAX=128 $(VENV)/bin/python benchmarks/inference_throughput.py --size 4096 --runtime onnx

train: install
	$(VENV)/bin/geovigie train training/configs/landcover-s2l1c-slovenia-unet.toml --out $$(mktemp -d) --bundle models/bundles/landcover-s2l1c-slovenia-unet-v1
	$(VENV)/bin/geovigie train training/configs/landcover-s2l1c-slovenia.toml --out $$(mktemp -d) --bundle models/bundles/landcover-s2l1c-slovenia-v4
	$(VENV)/bin/geovigie train training/configs/landcover-landsat7-nc.toml --out $$(mktemp -d) --bundle models/bundles/landcover-landsat7-nc-v2

clean:
	rm -rf $(VENV) geovigie-data
