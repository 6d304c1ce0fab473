# offsite — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
FONT   := /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc
PROMTOOL := /usr/bin/promtool
CHROMIUM := /usr/bin/chromium

.PHONY: install demo test lint typecheck unit test-kafka test-slow kafka-up kafka-down bench schemas clean test-faults soak

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

# The fault suite (offsite/faults.py): a clean run, then worker kill -9, PostgreSQL restart,
# workers joining and leaving, 1 and 3 workers, each compared with it; first on the embedded
# broker, then on Apache Kafka (scripts/kafka.sh). FAULTS_ARGS adds options, e.g. a cluster's
# `--bootstrap H:P --broker-stop CMD --broker-start CMD` for the broker kill -9 row.
test-faults: install
	$(BIN)/python -m offsite.faults $(FAULTS_ARGS)
	scripts/kafka.sh start
	$(BIN)/python -m offsite.faults --bootstrap $$(cat var/kafka/bootstrap) $(FAULTS_ARGS); \
	  status=$$?; scripts/kafka.sh stop; exit $$status

# Steady input through two workers for 10 minutes; fails if memory or lag keeps growing
# (bench/soak.py; SOAK_ARGS="--minutes 2" for a shorter try).
soak: install
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

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
