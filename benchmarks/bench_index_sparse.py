"""Sparse index benchmark: identity with a brute-force dot product, and queries/s at 100,000 documents.

Run: ``.venv/bin/python benchmarks/bench_index_sparse.py`` (100,000 documents, 30,000-token Zipf
vocabulary, ~60 terms per document, ~12 per query; ``--docs 5000`` for a smoke run).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.synthetic import sparse_docs
from index.sparse import SparseIndex, rank_row, to_csr


def _brute_force(docs_csr, ids: np.ndarray, queries: list[dict[int, float]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every document's full dot product with a dense query vector, ranked by score then id."""
    scores = np.full((len(queries), k), -np.inf, np.float32)
    found = np.full((len(queries), k), -1, np.int64)
    for i, q in enumerate(queries):
        dense = np.zeros(docs_csr.shape[1], np.float64)
        for t, w in q.items():
            if t < dense.size:
                dense[t] = w
        scores[i], found[i] = rank_row(np.arange(ids.size), docs_csr @ dense, ids, k)
    return scores, found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--vocab", type=int, default=30_000)
    ap.add_argument("--queries", type=int, default=512)
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args()
    print(f"# command: .venv/bin/python benchmarks/bench_index_sparse.py {' '.join(sys.argv[1:])}".rstrip())
    t = time.perf_counter()
    docs, queries = sparse_docs(args.docs, args.vocab, args.queries, doc_terms=60, query_terms=12, seed=0)
    nnz = sum(len(d) for d in docs)
    gen = time.perf_counter() - t
    print(f"# {args.docs} docs, {nnz} nonzeros, vocab {args.vocab}, {args.queries} queries; gen {gen:.1f}s")
    ids = np.arange(args.docs, dtype=np.int64) * 2 + 1
    index = SparseIndex()
    t = time.perf_counter()
    index.add(ids, docs)
    index.search(queries[:1], args.k)  # builds the inverted matrix
    print(f"# add + inverted build {time.perf_counter() - t:.2f}s")
    t = time.perf_counter()
    want = _brute_force(to_csr(docs), ids, queries, args.k)
    brute_qps = len(queries) / (time.perf_counter() - t)
    got = index.search(queries, args.k)
    same_ids = bool((got.ids == want[1]).all())
    max_diff = float(np.max(np.abs(np.where(got.ids >= 0, got.scores - want[0], 0))))
    rows = [("brute-force dot product, 1 query/call", brute_qps)]
    for batch in (1, 64):
        t = time.perf_counter()
        for i in range(0, len(queries), batch):
            index.search(queries[i : i + batch], args.k)
        rows.append((f"SparseIndex, {batch} queries/call", len(queries) / (time.perf_counter() - t)))
    print(f"# identical to brute force: ids {same_ids}, max |score diff| {max_diff:.2e}")
    print(f"{'case':40} {'queries/s':>10}")
    for name, qps in rows:
        print(f"{name:40} {qps:10.1f}")


if __name__ == "__main__":
    main()
