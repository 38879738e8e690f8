# CDR platform. `make help` lists every target. `make demo` and `make test` do all set-up themselves.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON      ?= python3.11
VENVS       := .venvs
CORE        := $(VENVS)/core
FLINK_VENV  := $(VENVS)/flink
SUPERSET    := $(VENVS)/superset
CDR         := $(CORE)/bin/cdr
PY          := $(CORE)/bin/python
# compose/compose.py needs only the standard library and PyYAML
COMPOSE_PY  ?= $(if $(wildcard $(PY)),$(PY),python3)
# Demo dataset and benchmark sizes (override on the command line: make demo DEMO_SUBSCRIBERS=50000)
DEMO_OUT         ?= data/demo
DEMO_SUBSCRIBERS ?= 5000
DEMO_DAYS        ?= 3
BENCH_CDRS       ?= 5000000
# Speed-layer demo: one day of CDRs in about two minutes (a day is 86,400 s of event time)
DEMO_STREAM_RATE  ?= 20000
DEMO_STREAM_CLOCK ?= accelerated:720
# The streamed day follows the batched ones (the generator's default first day is 2025-12-28), and
# the stream goes on for an hour past it so that the jobs close every window of the day.
DEMO_STREAM_DAY   ?= 2025-12-31
DEMO_STREAM_UNTIL ?= 2026-01-01T01:00
# Tests that need the real services are marked `stack`; STACK_TESTS=0 skips them.
PYTEST_ARGS ?=

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "; printf "Usage: make TARGET\n\n"} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --- set-up -----------------------------------------------------------------------------------

$(CORE)/.installed: requirements/core.txt pyproject.toml
	@test -x $(CORE)/bin/python || $(PYTHON) -m venv $(CORE)
	$(CORE)/bin/pip install -q --upgrade pip==24.3.1
	$(CORE)/bin/pip install -q -r requirements/core.txt
	$(CORE)/bin/pip install -q --no-deps -e .
	@touch $@

$(FLINK_VENV)/.installed: requirements/flink.txt pyproject.toml
	@test -x $(FLINK_VENV)/bin/python || $(PYTHON) -m venv $(FLINK_VENV)
	$(FLINK_VENV)/bin/pip install -q --upgrade pip==24.3.1
	$(FLINK_VENV)/bin/pip install -q -r requirements/flink.txt
	$(FLINK_VENV)/bin/pip install -q --no-deps -e .
	@touch $@

# Superset runs from its own venv (its Flask/SQLAlchemy 1.4 pins clash with the core venv's); the
# local stack starts its `superset` CLI, so the project itself is not installed there.
$(SUPERSET)/.installed: requirements/superset.txt
	@test -x $(SUPERSET)/bin/python || $(PYTHON) -m venv $(SUPERSET)
	$(SUPERSET)/bin/pip install -q --upgrade pip==24.3.1
	$(SUPERSET)/bin/pip install -q -r requirements/superset.txt
	@touch $@

.PHONY: setup
setup: $(CORE)/.installed $(FLINK_VENV)/.installed $(SUPERSET)/.installed ## Create the virtual environments (core, flink, superset), install system packages and jars
	$(CDR) stack install

.PHONY: lock
lock: ## Re-resolve requirements/*.in into the pinned requirements/*.txt
	$(PYTHON) -m venv /tmp/cdr-lock-core && /tmp/cdr-lock-core/bin/pip install -q -r requirements/core.in \
	  && /tmp/cdr-lock-core/bin/pip freeze --exclude-editable > requirements/core.txt
	$(PYTHON) -m venv /tmp/cdr-lock-flink && /tmp/cdr-lock-flink/bin/pip install -q -r requirements/flink.in \
	  && /tmp/cdr-lock-flink/bin/pip freeze --exclude-editable > requirements/flink.txt
	$(PYTHON) -m venv /tmp/cdr-lock-superset && /tmp/cdr-lock-superset/bin/pip install -q -r requirements/superset.in \
	  && /tmp/cdr-lock-superset/bin/pip freeze --exclude-editable > requirements/superset.txt

# --- local stack --------------------------------------------------------------------------------

.PHONY: up-local
up-local: setup ## Start every service of the platform as local processes (no containers)
	$(CDR) stack up

.PHONY: down-local
down-local: ## Stop the local stack (keeps its data; PURGE=1 deletes it)
	$(CDR) stack down $(if $(filter 1,$(PURGE)),--purge,)

.PHONY: status
status: ## Show the state of each local service
	$(CDR) stack status

# --- container stack ----------------------------------------------------------------------------
# compose/compose.py needs only the standard library and PyYAML.
COMPOSE_CMD := $(COMPOSE_PY) compose/compose.py

.PHONY: engine
engine: ## Install Docker Engine (Debian) and Docker Compose (Go module proxy) if missing, start dockerd (root)
	compose/images/engine.sh

.PHONY: env
env: ## Write .env with every secret of the container stack generated (keeps those already set)
	$(COMPOSE_CMD) env

.PHONY: base-image
base-image: ## Build the base image from Debian's packages with debootstrap (when no registry is reachable)
	compose/images/base-image.sh $(BASE_IMAGE)

.PHONY: images
images: ## Build the platform image (and its base image when it cannot be pulled)
	$(COMPOSE_CMD) images

.PHONY: up
up: ## Build and start the container stack, wait until healthy (PROFILES=batch,stream,...); see up-local otherwise
	$(COMPOSE_CMD) up $(if $(PROFILES),--profiles $(PROFILES),)

.PHONY: down
down: ## Stop the container stack (keeps its volumes)
	$(COMPOSE_CMD) down

.PHONY: reset
reset: ## Stop the container stack and delete its volumes (asks first; FORCE=1 does not)
	$(COMPOSE_CMD) reset $(if $(filter 1,$(FORCE)),--force,)

.PHONY: ps
ps: ## State of the container stack's services
	$(COMPOSE_CMD) ps

.PHONY: logs
logs: ## Follow the logs of the container stack (S=service for one)
	$(COMPOSE_CMD) logs $(S)

.PHONY: smoke
smoke: ## Check the running container stack end to end (Kafka, Hive via Thrift, Flink job, Prometheus)
	$(COMPOSE_CMD) smoke

# The main job on the container stack: what `make demo` does, with the batch on the Spark cluster.
# The live producer is stopped first: the demo streams its own day, with labelled scenarios.
CDR_IN_CONTAINER := $(COMPOSE_CMD) cdr
.PHONY: demo-compose
demo-compose: ## The demo on the container stack (make up first): dataset, batch on the Spark cluster, scores, stream, alerts
	$(CDR_IN_CONTAINER) generate --out data/demo --subscribers $(DEMO_SUBSCRIBERS) --days $(DEMO_DAYS) --overwrite
	$(CDR_IN_CONTAINER) batch run --input data/demo
	$(CDR_IN_CONTAINER) batch tables
	$(CDR_IN_CONTAINER) batch score --labels data/demo
	$(COMPOSE_CMD) stop producer
	$(CDR_IN_CONTAINER) stream reset --yes
	$(CDR_IN_CONTAINER) stream start --subscribers $(DEMO_SUBSCRIBERS)
	$(CDR_IN_CONTAINER) produce --start $(DEMO_STREAM_DAY) --days 2 --until $(DEMO_STREAM_UNTIL) --subscribers $(DEMO_SUBSCRIBERS) --rate $(DEMO_STREAM_RATE) --clock $(DEMO_STREAM_CLOCK)
	$(CDR_IN_CONTAINER) stream score --wait 300
	$(CDR_IN_CONTAINER) stream status
	$(CDR_IN_CONTAINER) stream tables --wait 300
	$(CDR_IN_CONTAINER) serving status
	$(CDR_IN_CONTAINER) batch run --from-bronze --date $(DEMO_STREAM_DAY)
	$(CDR_IN_CONTAINER) serving reconcile --date $(DEMO_STREAM_DAY)
	$(CDR_IN_CONTAINER) serving incidents --date $(DEMO_STREAM_DAY)
	$(CDR_IN_CONTAINER) serving status

# --- the main job -------------------------------------------------------------------------------

# The batch publishes its days to the serving layer; the streamed day is read from the speed layer
# until the batch reaches it (from the stream's bronze landing), then reconciled between the two.
.PHONY: demo
demo: up-local ## Start the stack, batch a labelled dataset, stream the next day, score both, merge and reconcile the layers
	$(CDR) generate --out $(DEMO_OUT) --subscribers $(DEMO_SUBSCRIBERS) --days $(DEMO_DAYS) --overwrite
	$(CDR) batch run --input $(DEMO_OUT) --dev-key
	$(CDR) batch tables
	$(CDR) batch score --labels $(DEMO_OUT) --dev-key
	$(CDR) stream reset --yes
	$(CDR) stream start --dev-key --subscribers $(DEMO_SUBSCRIBERS)
	$(CDR) produce --start $(DEMO_STREAM_DAY) --days 2 --until $(DEMO_STREAM_UNTIL) --subscribers $(DEMO_SUBSCRIBERS) --rate $(DEMO_STREAM_RATE) --clock $(DEMO_STREAM_CLOCK)
	$(CDR) stream score --dev-key --wait 300
	$(CDR) stream status
	$(CDR) stream tables --wait 300
	$(CDR) stream compact
	$(CDR) stream tables
	$(CDR) serving status
	$(CDR) batch run --from-bronze --date $(DEMO_STREAM_DAY) --dev-key
	$(CDR) serving reconcile --date $(DEMO_STREAM_DAY)
	$(CDR) serving incidents --date $(DEMO_STREAM_DAY)
	$(CDR) serving status

.PHONY: bi
bi: setup ## Start the local stack with Superset on 127.0.0.1:8088 and the dashboards of the repository (docs/bi.md)
	$(CDR) stack up --with superset

# The token goes through the environment (JupyterLab reads JUPYTER_TOKEN), never the command line.
.PHONY: lab
lab: $(CORE)/.installed ## Start JupyterLab on 127.0.0.1:8888 in notebooks/ (token: JUPYTER_TOKEN, else a generated one)
	@export JUPYTER_TOKEN="$${JUPYTER_TOKEN:-$$($(PY) -c 'import secrets; print(secrets.token_hex(24))')}"; \
	  echo "JupyterLab: http://127.0.0.1:8888/lab?token=$$JUPYTER_TOKEN"; \
	  exec $(CORE)/bin/jupyter lab --ip=127.0.0.1 --port=8888 --no-browser --ServerApp.root_dir=notebooks \
	    $(if $(filter 0,$(shell id -u)),--allow-root,)

# --- quality ------------------------------------------------------------------------------------

# The two stacks claim the same host ports and together would not fit the memory: the local stack is
# stopped before the container suite starts, and a container stack left by an interrupted run (the
# engine restarts its containers when it starts) is removed before the local suite starts. The engine
# and the image are prepared in the background while the local suite runs (mostly downloads), which
# saves CI about ten minutes; the container suite's `make up` then finds the image built.
# COMPOSE_TESTS=0 skips the container suite.
IMAGES_LOG ?= /tmp/cdr-images-build.log
.PHONY: test
test: setup ## Run all tests: unit, the local stack's integration tests, then the container stack's
	@set -e; \
	if [ "$(COMPOSE_TESTS)" != 0 ] && command -v dockerd >/dev/null 2>&1; then \
	  echo "$$(date -u +%T) removing whatever an interrupted run left of the container stack"; \
	  $(MAKE) --no-print-directory engine env > $(IMAGES_LOG) 2>&1 || { cat $(IMAGES_LOG); exit 1; }; \
	  $(MAKE) --no-print-directory reset FORCE=1; \
	fi; \
	if [ "$(COMPOSE_TESTS)" != 0 ]; then \
	  echo "preparing the container engine and image in the background (log: $(IMAGES_LOG))"; \
	  ( $(MAKE) --no-print-directory engine env images > $(IMAGES_LOG) 2>&1 && echo "$$(date -u +%T) engine and image ready" >> $(IMAGES_LOG) ) & images=$$!; \
	fi; \
	echo "$$(date -u +%T) local suite"; \
	$(CORE)/bin/pytest -m "not compose and not recovery" $(PYTEST_ARGS); \
	if [ "$(COMPOSE_TESTS)" != 0 ]; then \
	  echo "$$(date -u +%T) waiting for the container image"; \
	  wait $$images || { tail -n 40 $(IMAGES_LOG); echo "error: preparing the container image failed (log: $(IMAGES_LOG))"; exit 1; }; \
	  tail -n 3 $(IMAGES_LOG); \
	  $(MAKE) --no-print-directory down-local; \
	  echo "$$(date -u +%T) container suite"; \
	  $(MAKE) --no-print-directory test-compose; \
	fi; \
	echo "$$(date -u +%T) done"

.PHONY: test-unit
test-unit: $(CORE)/.installed ## Run only the tests that need no service
	$(CORE)/bin/pytest -m "not stack and not compose" $(PYTEST_ARGS)

# The validation agreement property tests (tests/unit/test_validation_agreement.py) draw 300 records
# per record type in the unit suite; `make fuzz` draws FUZZ_RECORDS per type through the same engines.
FUZZ_RECORDS ?= 10000
.PHONY: fuzz
fuzz: $(CORE)/.installed $(FLINK_VENV)/.installed ## Same verdict in Python, Spark and Flink SQL for 10,000 generated records per type (FUZZ_RECORDS=N)
	CDR_FUZZ_RECORDS=$(FUZZ_RECORDS) $(CORE)/bin/pytest tests/unit/test_validation_agreement.py -m "not stack and not compose" $(PYTEST_ARGS)

.PHONY: test-local
test-local: setup ## Run the unit tests and the local stack's integration tests (no containers)
	$(CORE)/bin/pytest -m "not compose and not recovery" $(PYTEST_ARGS)

# The restart tests of the detection job (from a savepoint, from the checkpoint of a cancelled run)
# take about 13 minutes, which CI's 90 do not leave room for (docs/benchmarks.md, "Container
# stack"): not in `make test`. Run them before changing the job's state, checkpoints or restart path.
# They run in their module, after the uninterrupted detection they compare with.
.PHONY: test-recovery
test-recovery: setup ## The speed layer's module with its restart tests: savepoint and checkpoint restarts give the same alerts (about 20 min)
	$(CORE)/bin/pytest tests/integration/test_stream_pipeline.py $(PYTEST_ARGS)

.PHONY: grafana-alerts
grafana-alerts: $(CORE)/.installed ## Regenerate Grafana's alert rules from the Prometheus rules (compose/grafana/provisioning/alerting/)
	$(CORE)/bin/python monitoring/grafana/alert_rules.py

.PHONY: test-compose
test-compose: $(CORE)/.installed engine env ## Build and start the container stack, then test it end to end (tests/compose)
	$(CORE)/bin/pytest tests/compose -m compose $(PYTEST_ARGS)

.PHONY: docs
docs: $(CORE)/.installed ## Regenerate docs/data-contract.md and docs/schemas/ from the contract
	$(CDR) contract docs

# --- benchmarks ---------------------------------------------------------------------------------

.PHONY: bench-compose
bench-compose: $(CORE)/.installed engine env ## Container stack: cold build, code-change rebuild, up to healthy, memory (20-40 min; BENCH_COLD=0 skips the cold build)
	$(COMPOSE_PY) compose/bench.py

.PHONY: bench-generator
bench-generator: $(CORE)/.installed ## CDRs/s of the generator against pyarrow's write limit, same run
	taskset -c 0 $(PY) -m generator.bench --rows $(BENCH_CDRS)

.PHONY: bench-stream
bench-stream: setup ## Producer records/s against Kafka's ProducerPerformance; bronze and detection drain rates; alert latency at 10,000 records/s
	mvn -q dependency:get -Dartifact=org.apache.kafka:kafka-tools:4.1.1 -Dtransitive=false  # ProducerPerformance
	$(PY) -m streaming.bench

.PHONY: bench-compaction
bench-compaction: up-local ## Full scans of a bronze day landed in 2,880 files against the same day compacted; compaction time
	$(PY) -m streaming.bench_compaction

.PHONY: bench-batch
bench-batch: $(CORE)/.installed ## Batch chain time and records/s for 1 M and 10 M CDRs against a Spark copy baseline
	$(PY) -m batch.bench --cdrs 1000000 --cdrs 10000000

.PHONY: bench-serving
bench-serving: $(CORE)/.installed ## Serving layer (after make demo): publish vs plain Spark JDBC write; merged-view query p50/p95, demo and 10x rows
	$(PY) -m serving.bench

.PHONY: bench-stack
bench-stack: setup ## Cold start time of the local stack and idle memory per service
	$(CDR) stack bench

.PHONY: clean
clean: ## Remove generated data (keeps the venvs and the stack's state)
	rm -rf data out
