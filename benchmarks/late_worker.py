"""One engine of ``bench_late_interaction_scale.py`` in a process of its own (so its RSS is its own).

    python benchmarks/late_worker.py build|serve --engine exact|two_stage|compressed --set DIR --docs N
        [--grow-from M] --out DIR

``build`` makes the index over documents ``0..N-1`` of the set and saves it in ``OUT/index``; ``compressed``
streams (trained first on a uniform sample of rows, then fed batches of about 65k tokens converted to float32 one
batch at a time; ``--grow-from M``: built over the first M documents, then documents M..N-1 added to the built
index, no rebuild); ``exact`` and ``two_stage`` get every document in one ``add`` (they train on the whole corpus,
as today's service does). ``serve`` loads the saved index in a fresh process and answers every query one at a
time. Each writes ``OUT/<phase>.json``; ``serve`` also ``OUT/ids.npy`` (document indices, (n_queries, 10)).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.late_sets import TokenSet
from benchmarks.procmem import PeakAnon, memory
from index import MultiVectorConfig, MultiVectorIndex


def _dir_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _train_sample(ts: TokenSet, n_docs: int, seed: int = 0) -> np.ndarray:
    """float32 rows drawn uniformly from the first ``n_docs`` documents (enough for sqrt(T) lists)."""
    total = int(ts.offsets[n_docs])
    take = min(total, max(round(math.sqrt(total)), 256) * 64 + 2048)
    rows = np.sort(np.random.default_rng(seed).choice(total, size=take, replace=False))
    return ts.rows(rows).astype(np.float32)


def build(args: argparse.Namespace) -> dict[str, object]:
    with PeakAnon() as peak:
        out = _build(args)
    return {**out, "peak_anon": peak.peak}


def _build(args: argparse.Namespace) -> dict[str, object]:
    start = memory()
    ts = TokenSet(Path(args.set))
    out = Path(args.out) / "index"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    if args.engine == "compressed":
        first = args.grow_from or args.docs
        search = {k: int(v) for k, v in (kv.split("=") for kv in args.settings.split(",") if kv)}
        index = MultiVectorIndex(ts.dim, MultiVectorConfig(kind="compressed", **search), directory=out)
        index.train(_train_sample(ts, first), n_tokens=int(ts.offsets[first]))
        for a, b in ts.batches(0, first):
            index.add(np.arange(a, b), ts.docs(a, b))
        built_first = time.perf_counter() - t
        for a, b in ts.batches(first, args.docs):
            index.add(np.arange(a, b), ts.docs(a, b))
    else:
        index = MultiVectorIndex(ts.dim, MultiVectorConfig(kind=args.engine))
        docs = ts.docs(0, args.docs)
        index.add(np.arange(args.docs), docs)
        del docs
        built_first = time.perf_counter() - t
    build_s = time.perf_counter() - t
    plan = index.retrain_plan()
    t = time.perf_counter()
    index.save(out, seq=1)
    save_s = time.perf_counter() - t
    end = memory()
    return {
        "build_s": build_s,
        "build_first_s": built_first,
        "save_s": save_s,
        "peak_rss": end["peak"],
        "start_rss": start["rss"],
        "start_anon": start["anon"],
        "end_rss": end["rss"],
        "tokens": int(ts.offsets[args.docs]),
        "docs": args.docs,
        "disk_bytes": _dir_bytes(out),
        "retrain_due": None if plan is None else plan.reason,
        "accounting": index.memory_bytes(),
    }


def serve(args: argparse.Namespace) -> dict[str, object]:
    ts = TokenSet(Path(args.set))
    queries = ts.queries()
    before = memory()
    t = time.perf_counter()
    index = MultiVectorIndex.load(Path(args.out) / "index")
    index.search([queries[0]], 10)  # warm-up (the two-stage kinds build their bfloat16 working copy here)
    load_s = time.perf_counter() - t
    loaded = memory()  # the index ready to serve, as fast-plaid's (which loads on its first search)
    lat, ids = [], []
    for q in queries:
        t = time.perf_counter()
        found = index.search([q], 10)
        lat.append(time.perf_counter() - t)
        ids.append(found.ids[0])
    after = memory()
    np.save(Path(args.out) / "ids.npy", np.stack(ids))
    return {
        "load_s": load_s,
        "latency_s": lat,
        "before": before,
        "loaded": loaded,
        "after": after,
        "accounting": index.memory_bytes(),
        "ram_bytes_per_doc": index.ram_bytes_per_doc(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("phase", choices=["build", "serve"])
    ap.add_argument("--engine", choices=["exact", "two_stage", "compressed"], required=True)
    ap.add_argument("--set", required=True)
    ap.add_argument("--docs", type=int, required=True)
    ap.add_argument("--grow-from", type=int, default=0)
    ap.add_argument("--settings", default="", help="compressed: integer MultiVectorConfig fields, e.g. token_k=2048")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    result = build(args) if args.phase == "build" else serve(args)
    (Path(args.out) / f"{args.phase}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
