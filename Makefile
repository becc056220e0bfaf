# Every target installs what it needs first (a virtualenv in .venv), so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help install serve test lint typecheck bench bench-encoder bench-index bench-quality bench-retrieval bench-large clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)  # the /ui browser test
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the service with its test/dev tools (torch from pip's index)

serve: $(STAMP)  ## serve the bundled all-MiniLM-L6-v2 on 127.0.0.1:8000 (ARGS="--port 9000 ...")
	HF_HUB_OFFLINE=$${HF_HUB_OFFLINE:-0} $(BIN)/retrieval serve $(ARGS)

test: $(STAMP)  ## run the whole test suite (offline; slow/gpu tests deselected)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff lint + format check, import-layer contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)  ## mypy over the packages
	$(BIN)/mypy

bench: bench-encoder bench-index bench-quality bench-retrieval bench-large  ## every benchmark (prints ours-vs-peer ratios)

bench-encoder: $(STAMP)  ## encoder throughput vs sentence-transformers, HTTP vs offline
	$(BIN)/python benchmarks/bench_encode.py
	$(BIN)/python benchmarks/bench_http.py
	$(BIN)/python benchmarks/bench_rerank.py

bench-index: $(STAMP)  ## index families vs raw FAISS / exact search
	$(BIN)/python benchmarks/bench_index_dense.py
	$(BIN)/python benchmarks/bench_index_multivector.py
	$(BIN)/python benchmarks/bench_index_sparse.py
	$(BIN)/python benchmarks/bench_maxsim.py

bench-quality: $(STAMP)  ## BEIR SciFact nDCG@10 of all-MiniLM-L6-v2 (encoder + index; tuned dense + token MaxSim + BM25) (needs ../shared/data)
	$(BIN)/python benchmarks/bench_beir.py
	$(BIN)/python benchmarks/bench_tune_scifact.py

bench-retrieval: $(STAMP)  ## the service over REST: SciFact quality vs ST/bm25s, ingest vs offline, 100k-doc search latency, restart, storage, reindex
	$(BIN)/python benchmarks/bench_retrieval_quality.py
	$(BIN)/python benchmarks/bench_retrieval_ingest.py
	$(BIN)/python benchmarks/bench_retrieval_search.py
	$(BIN)/python benchmarks/bench_reindex.py

bench-large: $(STAMP)  ## large corpora: Ray Data embed vs one process, bulk load vs REST and vs the raw floor
	$(BIN)/python benchmarks/bench_embed_ray.py
	$(BIN)/python benchmarks/bench_bulk_load.py

clean:  ## remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
