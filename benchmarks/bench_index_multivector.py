"""Multi-vector (MaxSim) benchmark: two-stage search vs exact MaxSim over the same float16 store.

Run: ``.venv/bin/python benchmarks/bench_index_multivector.py`` (20,000 documents of 64-300 tokens x 128,
queries 32 x 128; ``--docs 2000`` for a smoke run). Prints recall@10 against exact MaxSim, queries/s of
both (same query batches, interleaved), the speed-up, and bytes of memory per stored token vector.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.synthetic import clustered_multivector
from index.config import MultiVectorConfig
from index.multivector import MultiVectorIndex


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = [len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / truth.shape[1]


def _time(index: MultiVectorIndex, queries: list[np.ndarray], batch: int) -> float:
    t = time.perf_counter()
    for i in range(0, len(queries), batch):
        index.search(queries[i : i + batch], 10)
    return len(queries) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16, help="queries per search call (both methods)")
    ap.add_argument("--rerank", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    print(f"# command: .venv/bin/python benchmarks/bench_index_multivector.py {' '.join(sys.argv[1:])}".rstrip())
    t = time.perf_counter()
    docs, queries = clustered_multivector(args.docs, args.dim, args.queries, seed=0)
    n_tok = sum(d.shape[0] for d in docs)
    gen = time.perf_counter() - t
    print(f"# {args.docs} docs, {n_tok} token vectors x {args.dim}, {args.queries} queries x 32; gen {gen:.1f}s")
    ids = np.arange(args.docs, dtype=np.int64)
    exact = MultiVectorIndex(args.dim, MultiVectorConfig(kind="exact"))
    exact.add(ids, docs)
    truth = exact.search(queries, 10).ids
    mem = exact.memory_bytes()
    print(f"# exact: float16 store {sum(mem.values()) / n_tok:.1f} bytes/token", flush=True)
    two = MultiVectorIndex(args.dim, MultiVectorConfig(kind="two_stage"))
    t = time.perf_counter()
    two.add(ids, docs)
    print(f"# two-stage build (IVF-PQ over tokens: train + add) {time.perf_counter() - t:.1f}s")
    mem = two.memory_bytes()
    per_tok = {k: v / n_tok for k, v in mem.items()}
    parts = " + ".join(f"{k} {v:.2f}" for k, v in per_tok.items())
    print(f"# two-stage memory bytes/token: {parts} = {sum(per_tok.values()):.1f}")
    print(f"{'case':28} {'exact q/s':>10} {'two-stage q/s':>14} {'speed-up':>9} {'recall@10':>10}  floor")
    exact_rates = []
    for rerank in args.rerank:
        two.config = MultiVectorConfig(kind="two_stage", rerank=rerank)
        rec = _recall(two.search(queries, 10).ids, truth)
        two_rates = []
        for _ in range(args.reps):
            if len(exact_rates) < args.reps:  # exact is timed in the same loop as the first setting
                exact_rates.append(_time(exact, queries, args.batch))
            two_rates.append(_time(two, queries, args.batch))
        e, s = statistics.median(exact_rates), statistics.median(two_rates)
        name = f"two_stage rerank={rerank}"
        print(f"{name:28} {e:10.2f} {s:14.2f} {s / e:9.1f} {rec:10.4f}  recall >= 0.95 and x >= 5", flush=True)
    print(f"# queries per search call: {args.batch}; medians of {args.reps} timed passes; default rerank is 64")


if __name__ == "__main__":
    main()
