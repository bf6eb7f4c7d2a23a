# The README's commands. Everything a fresh machine needs is installed by these targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
CONSTRAINTS := constraints/airflow-3.3.2-py3.11.txt
STACK := $(VPY) stack/cli.py
AIRFLOW_ENV = eval "$$($(STACK) env)" &&
PYTEST_ARGS ?=
# The browser the UI tests drive through Playwright (Playwright downloads no browser of its own).
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM

.PHONY: venv browser stack-up stack-down stack-status airflow-ui demo test test-unit lint bench clean

# The project venv: Airflow 3.3.2, the Kafka provider, this provider and the DAGs' helpers (lessons/), both
# editable, and the dev tools. Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set (as on CI
# machines), every airflow process would otherwise compile each module it imports from source again.
$(VENV)/.installed: pyproject.toml lessons/pyproject.toml $(CONSTRAINTS)
	@command -v uv >/dev/null 2>&1 || $(PY) -m uv --version >/dev/null 2>&1 || $(PY) -m pip install -q uv
	@UV="$$(command -v uv || echo "$(PY) -m uv")"; \
	  echo "[venv] creating $(VENV) with Airflow (constraints $(CONSTRAINTS))"; \
	  [ -x $(VPY) ] || $$UV venv -q -p 3.11 $(VENV); \
	  $$UV pip install -q --compile-bytecode -p $(VPY) -c $(CONSTRAINTS) -e '.[dags,dev,bench]' -e lessons
	@touch $@

venv: $(VENV)/.installed

# Debian's chromium package, installed when $(CHROMIUM) is missing (as root, or through sudo without a password).
browser:
	@[ -x "$(CHROMIUM)" ] || { \
	  if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "[browser] $(CHROMIUM) is missing: install Chromium and run make with CHROMIUM=/path/to/chromium" >&2; exit 1; fi; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
	  echo "[browser] installing Debian's chromium package (one time, ~1 min)"; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends chromium fonts-liberation >/dev/null || { \
	    echo "[browser] could not install chromium: run 'sudo apt-get install chromium fonts-liberation'" >&2; exit 1; }; }

stack-up: venv
	$(STACK) up

stack-down: venv
	$(STACK) down $(if $(PURGE),--purge,)

stack-status: venv
	$(STACK) status

# The Airflow UI with scheduler, DAG processor and triggerer (what `airflow standalone` runs), on 127.0.0.1:8080.
airflow-ui: stack-up
	$(STACK) airflow-ui

demo: stack-up
	$(AIRFLOW_ENV) $(VPY) -m stack.demo

# Three workers on two cores: most of an integration test's time is spent waiting on Flink, Kafka and Airflow. Each
# module runs whole on one worker, except the long ones split per test (tests/conftest.py, ModuleScheduling);
# TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 3
test: stack-up browser
	$(AIRFLOW_ENV) $(VENV)/bin/pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadscope) $(PYTEST_ARGS)

test-unit: venv
	$(VENV)/bin/pytest -m unit $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy airflow_flink_provider

bench: stack-up
	$(AIRFLOW_ENV) $(VPY) -m benchmarks.run $(BENCH_ARGS)

# The scale benchmark alone (shared vs per-trigger polling, ~15 min; --scale-seconds 1800 for the long run) and
# the submission benchmarks three times, each ratio judged on the median of the runs.
.PHONY: bench-scale bench-submit-3x
bench-scale: stack-up
	$(AIRFLOW_ENV) $(VPY) -m benchmarks.run --only scale $(BENCH_ARGS)

bench-submit-3x: stack-up
	$(AIRFLOW_ENV) $(VPY) -m benchmarks.run --only pyflink_submit,sql_submit --repeat-runs 3 $(BENCH_ARGS)

clean:
	rm -rf $(VENV)
