# volcal — the two commands a newcomer runs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# pytest workers: both cores by default (override: make test JOBS=1)
JOBS   ?= 2

.PHONY: demo test browser install install-dev lint typecheck bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install --quiet -e ".[report,risk]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PIP) install --quiet -e ".[report,risk,store,history,stream,serve,dev,bench]"
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## demo: set up .venv, compile the kernels once (volcal warmup) and calibrate a real snapshot (or live / synthetic), writing demo.html
demo: install
	$(VENV)/bin/volcal warmup
	$(VENV)/bin/volcal demo --report demo.html

## test: set up .venv with the dev and bench extras and run the whole suite
test: install-dev browser
	$(VENV)/bin/volcal warmup
	$(PY) -m pytest -n $(JOBS) -q

browser:
	@if [ ! -x /usr/bin/chromedriver ] && [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
		echo "installing chromium and chromium-driver (browser test of the live page)"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver >/dev/null || echo "warning: chromium install failed"; \
	fi

lint: install-dev
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: install-dev
	$(VENV)/bin/mypy src

## bench: the speed benchmarks against QuantLib (pricing, calibration); each script in
## benchmarks/ has its own options, the figures and commands are in BENCHMARKS.md
bench: install-dev
	$(PY) benchmarks/bench_pricing.py --repeat 7
	$(PY) benchmarks/bench_calibration.py --parts bc --repeat 10

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
