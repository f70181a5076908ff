# The two commands a newcomer runs: `make demo` (install + the main job on bundled data) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# `make demo` installs the core only (what the demo runs); `make test` everything the tests need.
CORE_STAMP := $(VENV)/.installed-core
STAMP := $(VENV)/.installed
EXTRAS := dev,all

.PHONY: install demo test lint bench clean sanitize

$(VENV)/bin/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(CORE_STAMP): pyproject.toml src/piguard/detect/_cscan.c src/piguard/passport/_merkle.c src/piguard/deid/_group.c | $(VENV)/bin/python
	$(BIN)/pip install -q -e .
	touch $(CORE_STAMP)

$(STAMP): pyproject.toml src/piguard/detect/_cscan.c src/piguard/passport/_merkle.c src/piguard/deid/_group.c | $(VENV)/bin/python
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	touch $(CORE_STAMP) $(STAMP)

install: $(STAMP)

demo: $(CORE_STAMP)
	BIN=$(BIN) bash examples/demo.sh

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/pip install -q -e '.[bench]'
	$(PY) -m venv /tmp/piguard-pycanon && /tmp/piguard-pycanon/bin/pip install -q pycanon
	$(BIN)/python benchmarks/detect_bench.py
	$(BIN)/python benchmarks/eval_person_address.py
	$(BIN)/python benchmarks/deid_adult.py --pycanon-python /tmp/piguard-pycanon/bin/python
	$(BIN)/python benchmarks/rules_bench.py
	$(BIN)/python benchmarks/crawl_bench.py
	$(BIN)/python benchmarks/datamap_bench.py
	$(BIN)/python benchmarks/scan_memory.py
	$(PY) -m venv /tmp/piguard-sidecar && /tmp/piguard-sidecar/bin/pip install -q spu==0.9.5 openmined-psi
	$(BIN)/python benchmarks/joint_bench.py --spu-python /tmp/piguard-sidecar/bin/python \
		--openmined-python /tmp/piguard-sidecar/bin/python
	$(BIN)/python benchmarks/rights_bench.py
	$(BIN)/python benchmarks/scan_speed.py

# The compiled engine under AddressSanitizer and UBSan, on the engine's tests (then built plain again).
sanitize: $(STAMP)
	gcc -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -shared -fPIC \
		-I$$($(BIN)/python -c "import sysconfig; print(sysconfig.get_paths()['include'])") \
		src/piguard/detect/_cscan.c \
		-o src/piguard/detect/_cscan$$($(BIN)/python -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
		ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/detect/test_cscan.py tests/detect/test_structured.py \
		tests/detect/test_batch.py; \
		status=$$?; $(BIN)/pip install -q -e '.[$(EXTRAS)]'; exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
