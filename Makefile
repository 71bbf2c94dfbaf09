# fashionrec: two commands matter. `make demo` runs the system, `make test` tests it.
# Both start from a fresh clone with only Python 3.11 and apt available.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q -c requirements/constraints.txt
PACKAGES := libs/common libs/testing services/embedder/server services/embedder/workbench services/vector-search services/gateway services/annotation
STAMP := $(VENV)/.installed
PROTOS := $(wildcard proto/fashionrec/*/v1/*.proto)
PROTO_STAMP := libs/common/src/fashionrec/.generated
NATIVE_LIB := services/vector-search/src/vector_search/native/libvsfront.so.0

.PHONY: install proto lint format test test-unit demo screenshot bench eval clean lock system-deps help

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: $(STAMP) $(PROTO_STAMP) $(NATIVE_LIB)  ## create .venv, install every package (pinned), generate stubs, build the native front

# vector-search's native Search front: built where gRPC C++ is installed (make system-deps),
# else build.sh says why and the service serves from Python alone.
$(NATIVE_LIB): services/vector-search/native/front.cc services/vector-search/native/build.sh proto/fashionrec/vectorsearch/v1/vector_search.proto $(STAMP)
	bash services/vector-search/native/build.sh

$(STAMP): requirements/constraints.txt requirements/dev.in $(foreach p,$(PACKAGES),$(p)/pyproject.toml)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) grpcio-tools
	$(MAKE) --no-print-directory proto
	$(PIP) -r requirements/dev.in $(foreach p,$(PACKAGES),-e $(p))
	@touch $@

proto: $(PROTO_STAMP)  ## generate Python gRPC stubs from proto/ into libs/common (not committed)

$(PROTO_STAMP): $(PROTOS)
	@test -x $(BIN)/python || { echo "run 'make install' first"; exit 1; }
	rm -rf libs/common/src/fashionrec
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=libs/common/src \
		--pyi_out=libs/common/src --grpc_python_out=libs/common/src $(PROTOS)
	@touch $@

lint: install  ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install  ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

system-deps:  ## install (apt) and start Redis and PostgreSQL if they are not answering
	bash scripts/system-deps.sh

test: system-deps install  ## run the whole test suite (prints the 15 slowest: keep it under 20 min)
	$(BIN)/pytest --durations=15 $(PYTEST_ARGS)

test-unit: install  ## unit tests only (no servers)
	$(BIN)/pytest -m "not integration and not e2e and not browser" $(PYTEST_ARGS)

demo: install  ## train or reuse a model, index a sample catalogue, run every service (VECTOR_STORE=milvus: Milvus Lite)
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

screenshot: install  ## the README's shop screenshot, from the running `make demo`
	$(BIN)/python scripts/screenshot.py $(SCREENSHOT_ARGS)

bench: install  ## benchmarks (by hand; results go to docs/benchmarks.md)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

eval: install  ## evaluation report (docs/evaluation.md)
	$(BIN)/python -m embedder eval $(EVAL_ARGS)

lock:  ## re-resolve requirements/*.in into requirements/constraints.txt
	rm -rf /tmp/fashionrec-lock && $(PYTHON) -m venv /tmp/fashionrec-lock
	/tmp/fashionrec-lock/bin/pip install -q -r requirements/base.in -r requirements/dev.in
	{ echo "# Lock: every package of the workspace .venv, pinned. Regenerate with 'make lock'."; \
	  /tmp/fashionrec-lock/bin/pip freeze; } > requirements/constraints.txt

clean:  ## remove the venv, generated stubs, caches and demo state
	rm -rf $(VENV) libs/common/src/fashionrec var artifacts .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
