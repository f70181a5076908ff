# The two commands a newcomer runs: `make demo` (install + the main job on bundled data) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean sanitize

$(STAMP): pyproject.toml src/piguard/detect/_cscan.c src/piguard/deid/_group.c
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,spark,adapt]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
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

# The compiled engine under AddressSanitizer and UBSan, on the engine's tests (then built plain again).
sanitize: $(STAMP)
	gcc -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -shared -fPIC \
		-I$$($(BIN)/python -c "import sysconfig; print(sysconfig.get_paths()['include'])") \
		src/piguard/detect/_cscan.c \
		-o src/piguard/detect/_cscan$$($(BIN)/python -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
		ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/detect/test_cscan.py tests/detect/test_structured.py; \
		status=$$?; $(BIN)/pip install -q -e '.[dev,spark,adapt]'; exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
