"""How much noise a SciFact test nDCG@10 carries: per-query nDCG@10 of a fusion setting and of the default RRF,
each through the service's own search, their standard errors and a paired bootstrap of the difference.

    .venv/bin/python benchmarks/bench_tune_noise.py --data-dir DIR [--weights dense=0.75 multivector=1 bm25=1]

DIR is the data directory `bench_tune_scifact.py --data-dir DIR` filled (the `scifact` collection: MiniLM dense +
its token vectors + BM25). A measurement, not a choice: the setting compared is the one the tuner chose on train.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from encoder import Engine, ModelSpec  # noqa: E402
from retrieval.config import default_model_source  # noqa: E402
from retrieval.evaluation.measures import dedupe, load_judgments, ndcg_at_k  # noqa: E402
from retrieval.models.registry import ModelRegistry  # noqa: E402
from retrieval.search.fusion import FusionConfig  # noqa: E402
from retrieval.search.planner import SearchPlan, modes_of  # noqa: E402
from retrieval.service import RetrievalService  # noqa: E402


def per_query(svc: RetrievalService, fusion: FusionConfig, queries: dict[str, str], qrels: dict) -> np.ndarray:  # type: ignore[type-arg]
    """nDCG@10 x100 of each judged query, searched as a collection with this default fusion answers."""
    spec = svc.spec("scifact")
    out = []
    for q in sorted(qrels):
        plan = SearchPlan(queries[q], top_k=10, mode="hybrid", modes=modes_of(spec, "hybrid"), fusion=fusion)
        docs = dedupe(h.doc_id for h in asyncio.run(svc.search("scifact", plan)))
        out.append(100 * ndcg_at_k({q: docs}, {q: qrels[q]}, 10))
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "beir" / "scifact")
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--method", default="weighted")
    ap.add_argument("--weights", nargs="+", default=["dense=0.75", "multivector=1", "bm25=1"])
    args = ap.parse_args()
    weights = {k: float(v) for k, v in (w.split("=") for w in args.weights)}
    models = ModelRegistry([Engine.load(ModelSpec(source=default_model_source(), name="minilm"))])
    svc = RetrievalService.open(args.data_dir, models, default_collection=None)
    try:
        judged = load_judgments(args.data, "test")
        chosen = per_query(svc, FusionConfig(args.method, weights=weights), judged.queries, judged.qrels)
        default = per_query(svc, FusionConfig("rrf", 60), judged.queries, judged.qrels)
    finally:
        svc.close()
    for name, v in (("setting", chosen), ("default rrf k=60", default)):
        print(f"{name:>17}: nDCG@10 {v.mean():.2f}  SE {v.std(ddof=1) / np.sqrt(v.size):.2f}  ({v.size} queries)")
    d = chosen - default
    boot = np.random.default_rng(0).choice(d, (10_000, d.size)).mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    se = d.std(ddof=1) / np.sqrt(d.size)
    print(f"difference: {d.mean():.2f}  paired SE {se:.2f}  bootstrap 95% [{lo:.2f}, {hi:.2f}]")


if __name__ == "__main__":
    main()
