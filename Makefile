# Every target sets itself up on a fresh clone: it creates .venv and installs astrocnn if needed.
# torch==2.13.0 is named in the same pip command as the package, so pip takes the CPU build.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0 -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/astrocnn summary simple_cnn --input 3x32x32 --num-outputs 10 --compare-mlp
	$(BIN)/astrocnn demo --out demo-out

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_models.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/bench_peers.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/bench_engine.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/bench_generators.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/bench_ising.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/bench_ising_confusion.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/bench_sky_baseline.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/bench_iact.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/bench_iact_stream.py --out docs/benchmarks.md
	$(BIN)/python benchmarks/bench_iact_generate.py --out docs/benchmarks.md

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache demo-out
