# offsite — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
FONT   := /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc
PROMTOOL := /usr/bin/promtool
CHROMIUM := /usr/bin/chromium
JAVA     := /usr/bin/java
MVN      := /usr/bin/mvn
KAFKA_LIB := .cache/kafka-lib/.complete

.PHONY: install demo test lint typecheck unit test-kafka test-slow test-future test-faults test-faults-cluster soak \
	kafka-up kafka-down kafka-cluster kafka-cluster-down bench schemas clean

install: $(STAMP) $(FONT) $(PROMTOOL) $(CHROMIUM) $(KAFKA_LIB)

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

# The embedded broker is Apache Kafka (scripts/kafka.sh): a Java runtime and Maven from Debian,
# then its jars from Maven Central, once (.cache/kafka-lib).
# $(call apt_install,PACKAGE,what it is for): as the rules above, for one Debian package
apt_install = if [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -qq --no-install-recommends $(1) >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq --no-install-recommends $(1) >/dev/null)); \
	else \
	  sudo apt-get install -y -qq --no-install-recommends $(1) >/dev/null || \
	  { echo "install the Debian package $(1) ($(2))"; exit 1; }; \
	fi

$(JAVA):
	@$(call apt_install,default-jre-headless,for the embedded broker)

$(MVN): | $(JAVA)
	@$(call apt_install,maven,to fetch the broker's jars)

$(KAFKA_LIB): scripts/kafka/pom.xml | $(MVN)
	scripts/kafka.sh jars

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
# (Its own broker in var/kafka-test, wiped before and after; the embedded default is in var/kafka.)
test-kafka: install
	scripts/kafka.sh wipe --dir var/kafka-test
	scripts/kafka.sh start --dir var/kafka-test
	OFFSITE_TEST_KAFKA=$$(cat var/kafka-test/bootstrap) $(BIN)/pytest tests/integration; \
	  status=$$?; scripts/kafka.sh wipe --dir var/kafka-test; exit $$status

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

# The fault suite (offsite/faults.py): a clean run, then worker kill -9, PostgreSQL restart,
# workers joining and leaving, 1 and 3 workers, each compared with it, on the embedded broker
# (Apache Kafka, one node), with road and waterway traffic. FAULTS_ARGS adds options, e.g.
# another cluster's `--bootstrap H:P --broker-stop CMD --broker-start CMD`.
test-faults: install
	$(BIN)/python -m offsite.faults $(FAULTS_ARGS)

# The same suite on three Apache Kafka brokers started for it (replication factor 3,
# min.insync.replicas 2), with one more row: one broker killed (kill -9) mid-run and restarted.
test-faults-cluster: install
	$(BIN)/python -m offsite.faults --cluster $(FAULTS_ARGS)

# Steady input through two workers for 10 minutes; fails if memory or lag keeps growing
# (bench/soak.py; SOAK_ARGS="--minutes 2" for a shorter try).
soak: install
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

kafka-up:
	scripts/kafka.sh start

kafka-down:
	scripts/kafka.sh stop

# Three Apache Kafka brokers (KRaft) on loopback, data in var/kafka-cluster, bootstrap list in
# var/kafka-cluster/bootstrap; run offsite on it with kafka.replication_factor 3 and
# kafka.min_insync_replicas 2 (README: a real cluster). `scripts/kafka.sh kill N` kills node N.
kafka-cluster: install
	scripts/kafka.sh start --nodes 3 --dir var/kafka-cluster

kafka-cluster-down:
	scripts/kafka.sh stop --dir var/kafka-cluster

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
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python -m bench.peer

schemas: install
	$(BIN)/offsite schemas export

clean:
	-$(BIN)/offsite services down
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
