# offsite — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
FONT   := /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc
PROMTOOL := /usr/bin/promtool
CHROMIUM := /usr/bin/chromium

.PHONY: install demo test lint typecheck unit test-kafka test-slow test-future kafka-up kafka-down bench schemas clean

install: $(STAMP) $(FONT) $(PROMTOOL) $(CHROMIUM)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# Simulated plates and captions are Chinese: a CJK font from Debian.
$(FONT):
	@if [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -qq fonts-wqy-zenhei >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq fonts-wqy-zenhei >/dev/null)); \
	else \
	  sudo apt-get install -y -qq fonts-wqy-zenhei >/dev/null || \
	  { echo "install the Debian package fonts-wqy-zenhei"; exit 1; }; \
	fi

# promtool checks the metrics exposition and the alert rules in the tests (Debian `prometheus`).
$(PROMTOOL):
	@if [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null)); \
	else \
	  sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null || \
	  { echo "install the Debian package prometheus (for promtool)"; exit 1; }; \
	fi

# The browser tests (tests/browser) drive Debian's Chromium with Playwright (never its download).
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null)); \
	else \
	  sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null || \
	  { echo "install the Debian package chromium (for the browser tests)"; exit 1; }; \
	fi

demo: install
	$(BIN)/offsite demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit

# Lint, types, unit tests, and the integration tests on the embedded broker and PostgreSQL.
test: lint typecheck
	$(BIN)/pytest

# The integration suite on a real Apache Kafka broker (KRaft, single node, jars from Maven Central).
test-kafka: install
	scripts/kafka.sh start
	OFFSITE_TEST_KAFKA=$$(cat var/kafka/bootstrap) $(BIN)/pytest tests/integration; \
	  status=$$?; scripts/kafka.sh stop; exit $$status

# The integration and browser suites on the embedded broker, then the integration suite on
# Apache Kafka, with the CPU starved: one core shared with two busy loops (scripts/starve.sh).
# Not part of .ci/run; run it before you resolve anything that touches timing.
test-slow: install
	scripts/starve.sh $(BIN)/pytest tests/integration tests/browser
	scripts/starve.sh $(MAKE) --no-print-directory test-kafka

# The suite with the calendar moved to 2029 (Debian `faketime`, which the services started by the
# tests inherit): no outcome may depend on the day the tests run (issue #29).
FAKETIME := /usr/bin/faketime
$(FAKETIME):
	@if [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -qq faketime >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq faketime >/dev/null)); \
	else \
	  sudo apt-get install -y -qq faketime >/dev/null || \
	  { echo "install the Debian package faketime"; exit 1; }; \
	fi

test-future: install $(FAKETIME)
	$(FAKETIME) '2029-01-01 10:00:00' $(BIN)/pytest

kafka-up:
	scripts/kafka.sh start

kafka-down:
	scripts/kafka.sh stop

# Benchmarks (not tests): ratios against bare baselines, see bench/README.md.
bench: install
	$(BIN)/python -m bench.pipeline 100000 --processes
	$(BIN)/python -m bench.pipeline 50000
	$(BIN)/python -m bench.casesink
	$(BIN)/python -m bench.rules
	$(BIN)/python -m bench.detectors
	$(BIN)/python -m bench.evidence 200
	$(BIN)/python -m bench.ais
	$(BIN)/python -m bench.water
	$(BIN)/python -m bench.console

schemas: install
	$(BIN)/offsite schemas export

clean:
	-$(BIN)/offsite services down
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
