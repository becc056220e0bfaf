"""Where the compressed multi-vector kind wins over two-stage: the size behind ``auto_compressed_min``.

    nice -n 10 .venv/bin/python benchmarks/bench_multivector_auto.py [--tokens 250000 500000 1000000]
        [--set .bench/late_interaction/real]

For the first N tokens (whole documents) of a token set made by ``bench_late_interaction_scale.py`` (default: the
SciFact MiniLM set, 384 dims), builds ``two_stage`` and ``compressed`` in this process and times the same queries
one at a time, interleaved (median of ``--reps`` passes); prints p50 of each, their ratio, RAM bytes per token by
the indexes' own accounting and recall@10 of each against exact float32 MaxSim over the same documents. The
compressed kind wins at a size when its p50 is no worse (ratio <= 1): it always holds ~20x less RAM.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from benchmarks.late_sets import TokenSet, ground_truth  # noqa: E402
from index import MultiVectorConfig, MultiVectorIndex  # noqa: E402


def _p50(index: MultiVectorIndex, queries: list[np.ndarray]) -> tuple[float, np.ndarray]:
    lat, ids = [], []
    for q in queries:
        t = time.perf_counter()
        ids.append(index.search([q], 10).ids[0])
        lat.append(time.perf_counter() - t)
    return statistics.median(lat) * 1e3, np.stack(ids)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / b.size for a, b in zip(found, truth, strict=True)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", type=Path, default=ROOT / ".bench" / "late_interaction" / "real")
    ap.add_argument("--tokens", type=int, nargs="+", default=[250_000, 500_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    print(f"# command: {' '.join(sys.argv)}")
    ts = TokenSet(args.set)
    queries = ts.queries()[: args.queries]
    print(
        f"{'tokens':>10} {'docs':>6} {'two_stage p50':>14} {'compressed p50':>15} {'ratio':>6} "
        f"{'RAM B/t two':>11} {'RAM B/t comp':>12} {'rec two':>8} {'rec comp':>9}"
    )
    for n_tok in args.tokens:
        docs = ts.docs_upto(n_tok)
        truth = ground_truth(ts, docs)[1][: args.queries]
        items, ids = ts.docs(0, docs), np.arange(docs)
        two = MultiVectorIndex(ts.dim, MultiVectorConfig(kind="two_stage"))
        two.add(ids, items)
        with tempfile.TemporaryDirectory() as tmp:
            comp = MultiVectorIndex(ts.dim, MultiVectorConfig(kind="compressed"), directory=tmp)
            comp.add(ids, items)
            del items
            times: dict[str, list[float]] = {"two": [], "comp": []}
            for _ in range(args.reps):
                p, two_ids = _p50(two, queries)
                times["two"].append(p)
                p, comp_ids = _p50(comp, queries)
                times["comp"].append(p)
            p_two, p_comp = statistics.median(times["two"]), statistics.median(times["comp"])
            tokens = int(ts.offsets[docs])
            ram_two = sum(v for k, v in two.memory_bytes().items() if k != "disk") / tokens
            ram_comp = sum(v for k, v in comp.memory_bytes().items() if k != "disk") / tokens
            print(
                f"{tokens:>10,} {docs:>6,} {p_two:>14.1f} {p_comp:>15.1f} {p_comp / p_two:>6.2f} "
                f"{ram_two:>11.1f} {ram_comp:>12.1f} {_recall(two_ids, truth):>8.4f} {_recall(comp_ids, truth):>9.4f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
