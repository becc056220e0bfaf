"""Compact multi-vector storage: bytes per page/doc, recall@10 vs exact float16 MaxSim, speed, nDCG@10.

    .venv/bin/python benchmarks/bench_multivector_storage.py [--pages 2000] [--scifact]

Part 1, synthetic clustered patch vectors of ColQwen3 shape (``--patches`` x 320 per page): for every storage
setting (pool factor 1/2/3 x exact float16 / IVF-PQ first stage / binary first stage) the expected and actual
index bytes per page and recall@10 against exact float16 MaxSim over the *unpooled* vectors. Part 2
(``--scifact``), the same settings over the bundled MiniLM's SciFact token vectors (cached by
``benchmarks/scifact_tokens.py``): recall@10 vs exact, nDCG@10 on qrels/test.tsv, and speed vs exact.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.synthetic import clustered_multivector
from index.config import MultiVectorConfig
from index.multivector import MultiVectorIndex
from index.storage import expected_bytes_per_doc

FIRST_STAGES = {
    "exact f16": {"kind": "exact"},
    "ivf_pq": {"first_stage": "ivf_pq"},
    "binary": {"first_stage": "binary"},
}


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / b.size for a, b in zip(found, truth, strict=True)]))


def _settings(pools: list[int], extra: dict[str, object]) -> list[tuple[str, MultiVectorConfig]]:
    out = []
    for pf in pools:
        for name, kw in FIRST_STAGES.items():
            fields: dict[str, object] = {"kind": "two_stage", **extra, **kw, "pool_factor": pf}
            out.append((f"pool {pf} {name}", MultiVectorConfig(**fields)))  # type: ignore[arg-type]
    return out


def _timed_search(index: MultiVectorIndex, queries: list[np.ndarray], batch: int) -> tuple[np.ndarray, float]:
    t, ids = time.perf_counter(), []
    for i in range(0, len(queries), batch):
        ids.append(index.search(queries[i : i + batch], 10).ids)
    return np.concatenate(ids), (time.perf_counter() - t) / len(queries)


def _run(docs: list[np.ndarray], queries: list[np.ndarray], settings: list[tuple[str, MultiVectorConfig]], batch: int):
    dim, ids = docs[0].shape[1], np.arange(len(docs), dtype=np.int64)
    exact = MultiVectorIndex(dim, MultiVectorConfig(kind="exact", dtype="float32"))
    exact.add(ids, docs)
    truth, exact_s = _timed_search(exact, queries, batch)
    mean_len = round(float(np.mean([d.shape[0] for d in docs])))
    rows = [("exact f32 scan (truth)", exact.bytes_per_doc(), exact.bytes_per_doc(), 1.0, exact_s, truth)]
    for name, config in settings:
        t = time.perf_counter()
        index = MultiVectorIndex(dim, config)
        index.add(ids, docs)
        build = time.perf_counter() - t
        found, sec = _timed_search(index, queries, batch)
        expected = expected_bytes_per_doc(config, dim, mean_len, two_stage=config.kind != "exact")
        rows.append((name, expected, index.bytes_per_doc(), _recall(found, truth), sec, found))
        print(f"#   built {name} in {build:.1f}s", flush=True)
    return rows, exact_s


def synthetic(args: argparse.Namespace) -> None:
    docs, queries = clustered_multivector(args.pages, 320, args.queries, (args.patches, args.patches), 24, seed=0)
    print(f"## synthetic: {args.pages} pages x {args.patches} patches x 320, {args.queries} queries x 24")
    rows, exact_s = _run(docs, queries, _settings(args.pools, {}), args.batch)
    print(
        f"{'setting':26} {'expected B/page':>16} {'actual B/page':>14} {'recall@10':>10} {'ms/query':>9} {'x exact':>8}"
    )
    for name, exp, act, rec, sec, _ in rows:
        print(f"{name:26} {exp:16,.0f} {act:14,.0f} {rec:10.3f} {1e3 * sec:9.1f} {exact_s / sec:8.1f}")


def scifact(args: argparse.Namespace) -> None:
    from benchmarks.scifact_tokens import load_or_encode
    from retrieval.evaluation.measures import load_beir, ndcg_at_k

    corpus = load_or_encode()
    qrels = load_beir(Path(__file__).resolve().parents[2] / "shared" / "data" / "beir" / "scifact").qrels
    docs, queries = corpus.docs(), corpus.queries()
    print(f"## SciFact MiniLM token_embed: {len(docs)} docs, {corpus.doc_tokens.shape[0]:,} token vectors x 384")
    rows, exact_s = _run(docs, queries, _settings(args.pools, {}), args.batch)
    print(f"{'setting':26} {'B/doc':>10} {'recall@10':>10} {'nDCG@10':>8} {'ms/query':>9} {'x exact':>8}")
    for name, _, act, rec, sec, found in rows:
        run = {q: [corpus.doc_ids[j] for j in row] for q, row in zip(corpus.qids, found, strict=True)}
        ndcg = 100 * ndcg_at_k(run, qrels, 10)
        print(f"{name:26} {act:10,.0f} {rec:10.3f} {ndcg:8.2f} {1e3 * sec:9.1f} {exact_s / sec:8.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pages", type=int, default=2000)
    ap.add_argument("--patches", type=int, default=768)
    ap.add_argument("--queries", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--pools", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--scifact", action="store_true", help="also run on the cached SciFact MiniLM token vectors")
    ap.add_argument("--no-synthetic", action="store_true")
    args = ap.parse_args()
    print(f"# command: .venv/bin/python benchmarks/bench_multivector_storage.py {' '.join(sys.argv[1:])}".rstrip())
    if not args.no_synthetic:
        synthetic(args)
    if args.scifact:
        scifact(args)


if __name__ == "__main__":
    main()
