"""Tune a collection's search defaults on the user's judgments: representations, fusion, candidates, rerank depth.

Every representation is searched once per query at the deepest candidate count and the lists are cached; the
grid (:mod:`retrieval.evaluation.tune.grid`) then fuses those cached lists in memory for every setting. Settings are
scored with nDCG@10 on the *tuning* split only, within a time budget, most plausible first (the collection's
current default always). Which rule picks the setting (the one-SE rule or the best mean, over the coarse base
grid or every setting tried) is itself chosen by cross-validation within the tuning split
(:mod:`retrieval.evaluation.tune.choice`). The held-out split's judgments are read once, after the choice, to report
the chosen and the default setting side by side; without a held-out split, k-fold cross-validation over the
tuning split gives the held-out estimate instead (choose on k-1 folds, score on the k-th).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from retrieval.errors import InvalidRequestError
from retrieval.evaluation.figures import document_figures
from retrieval.evaluation.measures import EvalRow, Qrels, evaluate_run
from retrieval.evaluation.runs import judged_warnings
from retrieval.evaluation.tune.choice import Procedure, cross_validate, select
from retrieval.evaluation.tune.grid import QueryCache, Setting, TuneSpace, score_group, setting_of, settings_of
from retrieval.evaluation.tune.lists import MaxSimCache, query_caches, relevant_qids
from retrieval.search.documents import (
    DocumentRanking,
    list_depth,
    rank_documents,
    rerank_chunks,
    rerank_documents,
)
from retrieval.search.fusion import FusionConfig
from retrieval.search.hits import SearchRunner
from retrieval.search.planner import Rerank, SearchPlan, weighted_modes

__all__ = ["TuneReport", "TuneRequest", "TuneRow", "default_setting", "procedures", "tune"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TuneRequest:
    """Queries, the judgments tuned on, and optionally held-out judgments read only after the choice."""

    queries: Mapping[str, str]  # query id -> text (tuning and held-out queries)
    train: Qrels  # judgments the settings are chosen on
    test: Qrels | None = None  # held-out judgments (None: k-fold cross-validation on `train`)
    budget_s: float = 60.0  # time for trying settings (searching the queries comes first and is not cut)
    folds: int = 5  # cross-validation folds when there is no held-out split
    space: TuneSpace = field(default_factory=TuneSpace)  # what to try


@dataclass(frozen=True)
class TuneRow:
    """One setting's figures on the tuning split and (when given) the held-out split."""

    name: str  # "chosen", "default", "rrf k=60", or a single mode
    setting: Setting  # what was run
    train: EvalRow  # nDCG@10, recall@100, MRR@10 on the tuning split
    test: EvalRow | None  # the same on the held-out split (None without one)


@dataclass(frozen=True)
class TuneReport:
    """What the tuner chose, with the default's figures next to it."""

    chosen: Setting  # the best setting on the tuning split
    default: Setting  # the collection's current default
    fusion: FusionConfig  # `chosen` as the collection's default fusion
    rows: list[TuneRow]  # chosen, default, RRF k=60 over every mode, each mode alone
    tried: int  # settings scored (the default and the grid points; one the default repeats counts twice)
    total: int  # settings in the space (tried < total: the budget ran out)
    seconds: float  # wall time of the whole run
    train_queries: int  # judged queries tuned on
    test_queries: int  # judged held-out queries (0 without a held-out split)
    families: list[str] = field(default_factory=list)  # the collection's representations
    cv: dict[str, float] | None = None  # k-fold estimate: chosen / default mean held-out nDCG@10, folds
    applied: bool = False  # stored as the collection's defaults
    procedure: str = ""  # how `chosen` was picked (the procedure with the best cross-validated estimate)
    estimates: dict[str, float] = field(default_factory=dict)  # procedure -> cross-validated nDCG@10 on train
    warnings: list[str] = field(default_factory=list)  # judged documents the collection does not hold, per split


def default_setting(runner: SearchRunner, families: Sequence[str], can_rerank: bool) -> Setting:
    """The collection's current defaults as a setting (its rerank depth only when the tuner can reproduce it)."""
    spec = runner.spec
    modes, _ = weighted_modes(tuple(families), spec.fusion)  # type: ignore[arg-type]
    given = spec.fusion.weights or {}
    weights = tuple(float(given.get(m, 1.0)) for m in modes)
    rerank = spec.rerank_depth if can_rerank else 0
    if len(modes) == 1:
        return Setting(tuple(modes), (1.0,), "rrf", 60, spec.candidates, rerank)
    return Setting(tuple(modes), weights, spec.fusion.method, spec.fusion.k, spec.candidates, rerank)


def _fusion(setting: Setting) -> FusionConfig:
    if len(setting.modes) == 1:
        return FusionConfig()
    return FusionConfig(setting.method, setting.k, dict(zip(setting.modes, setting.weights, strict=True)))


def _reranker(setting: Setting, ms: MaxSimCache | None) -> Callable[[int, DocumentRanking], DocumentRanking] | None:
    """Query i's ranking after the setting's exact-MaxSim rerank (each document by its best chunk), as a search
    with `rerank: {top_n: setting.rerank}` reranks it; None without one."""
    if not setting.rerank:
        return None

    def rerank(q: int, ranking: DocumentRanking) -> DocumentRanking:
        assert ms is not None
        scored = ms.scores(q, rerank_chunks(ranking, setting.rerank, 1))
        return rerank_documents(ranking, scored, setting.rerank)

    return rerank


def ordered(setting: Setting, cache: QueryCache, q: int, ms: MaxSimCache | None, top_k: int = 10) -> list[str]:
    """The documents a search of `top_k` with `setting` returns for query `q` (grouped by document), best first,
    through `retrieval.search.documents.rank_documents` itself."""
    lists = {m: cache.chunks[m] for m in setting.modes}
    ranking = rank_documents(lists, cache.chunk_doc, _fusion(setting), list_depth(setting.candidates, top_k))
    rerank = _reranker(setting, ms)
    return (rerank(q, ranking) if rerank is not None else ranking).docs[:top_k]


def _figures(
    name: str, setting: Setting, caches: Sequence[QueryCache], qids: Sequence[str], qrels: Qrels, ms: MaxSimCache | None
) -> EvalRow:
    """The setting's figures on these queries, as `/evaluate` computes them (`document_figures`)."""
    queries = [(qid, {m: c.chunks[m] for m in setting.modes}, c.chunk_doc) for qid, c in zip(qids, caches, strict=True)]
    row = document_figures(
        name, setting.label(), queries, _fusion(setting), setting.candidates, qrels, _reranker(setting, ms)
    )
    return row


def _ndcg_of(docs: Sequence[str], cache: QueryCache) -> float:
    """nDCG@10 of one query's ranked documents."""
    gains = cache.judged.gains
    dcg = math.fsum(gains.get(d, 0.0) / math.log2(r + 1) for r, d in enumerate(docs[:10], start=1))
    return dcg / cache.judged.idcg


def _one(setting: Setting, caches: Sequence[QueryCache], ms: MaxSimCache | None) -> np.ndarray:
    """Per-query nDCG@10 float64 (n,) of one setting through the search path (fuse, then rerank)."""
    return np.array([_ndcg_of(ordered(setting, cache, q, ms), cache) for q, cache in enumerate(caches)])


@dataclass
class _Scores:
    """Per-query nDCG@10 of every setting tried, in the order tried."""

    settings: list[Setting] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)  # float64 (n_queries,) per setting

    def add(self, setting: Setting, values: np.ndarray) -> None:
        if setting not in self.settings:
            self.settings.append(setting)
            self.rows.append(values)

    def matrix(self) -> np.ndarray:
        return np.stack(self.rows)

    def best(self, limit: int = 1) -> list[int]:
        """Indexes of the `limit` best settings by mean; ties go to the one tried first."""
        means = self.matrix().mean(axis=1)
        return sorted(range(len(means)), key=lambda i: (-round(float(means[i]), 12), i))[:limit]


@dataclass
class _Clock:
    """Progress in settings tried, and the budget's deadline."""

    progress: Progress
    total: int
    deadline: float
    done: int = 0
    stopped: bool = False

    def tick(self, n: int = 1) -> None:
        self.done += n
        self.progress(min(self.done, self.total), self.total)

    def out_of_time(self) -> bool:
        self.stopped = self.stopped or time.monotonic() > self.deadline
        return self.stopped


def _grid(
    caches: Sequence[QueryCache],
    families: Sequence[str],
    space: TuneSpace,
    default: Setting,
    ms: MaxSimCache | None,
    clock: _Clock,
) -> _Scores:
    """Score the default, then every group of the space, then rerank depths on the best ones, until the deadline."""
    scores = _Scores()
    scores.add(default, _one(default, caches, ms))
    clock.tick()
    for group, vectors in settings_of(families, space, default.candidates):
        if clock.out_of_time():
            break
        values = score_group(caches, families, group, np.array(vectors))
        for w, row in zip(vectors, values, strict=True):
            scores.add(setting_of(families, *group, w), row)
        clock.tick(len(vectors))
    if ms is None or not space.rerank:
        return scores
    base = [scores.settings[i] for i in scores.best(space.rerank_top) if not scores.settings[i].rerank]
    for setting in base:
        for depth in space.rerank:
            if clock.out_of_time():
                return scores
            if depth <= setting.candidates:
                candidate = Setting(
                    setting.modes, setting.weights, setting.method, setting.k, setting.candidates, depth
                )
                scores.add(candidate, _one(candidate, caches, ms))
            clock.tick()
    return scores


def _space_size(families: Sequence[str], space: TuneSpace, default: Setting, can_rerank: bool) -> int:
    groups = sum(len(v) for _, v in settings_of(families, space, default.candidates))
    return 1 + groups + (space.rerank_top * len(space.rerank) if can_rerank else 0)


def procedures(settings: Sequence[Setting], space: TuneSpace, default: Setting) -> list[Procedure]:
    """The ways to choose that :func:`select` weighs: the one-SE rule and the best mean, each over the base grid
    (the default, and every method at its first constant with the collection's candidates and no rerank: the
    coarse grid) and over every setting tried. Listed from the most conservative: ties go to it."""
    k = space.rrf_k[0] if space.rrf_k else 60

    def coarse(s: Setting) -> bool:
        return (
            not s.rerank and s.candidates == default.candidates and (s.method != "rrf" or s.k == k or len(s.modes) == 1)
        )

    base = tuple(i for i, s in enumerate(settings) if s == default or coarse(s))
    every = tuple(range(len(settings)))
    return [
        Procedure("one-SE over the base grid", base or every, "one_se"),
        Procedure("best over the base grid", base or every, "best"),
        Procedure("one-SE over every setting", every, "one_se"),
        Procedure("best over every setting", every, "best"),
    ]


def _report_settings(
    families: Sequence[str], chosen: Setting, default: Setting, depth: int
) -> list[tuple[str, Setting]]:
    """chosen, default, RRF k=60 over every representation, and each representation alone."""
    out = [("chosen", chosen), ("default", default)]
    rrf = Setting(tuple(families), tuple([1.0] * len(families)), "rrf", 60, default.candidates)
    if len(families) > 1 and rrf != default:
        out.append(("rrf k=60", rrf))
    out += [(f, Setting((f,), (1.0,), "rrf", 60, depth)) for f in families]
    return out


@dataclass(frozen=True)
class _Plan:
    """What a tune run tries, fixed before it starts."""

    families: list[str]  # the collection's representations
    space: TuneSpace  # the request's space (no rerank depths when exact MaxSim cannot rerank)
    depth: int  # candidates fetched once per representation and query
    default: Setting  # the collection's current defaults
    can_rerank: bool  # token vectors and no cross-encoder reranker: rerank depths are tried


def _plan(runner: SearchRunner, space: TuneSpace) -> _Plan:
    spec, families = runner.spec, [str(m) for m in runner.spec.modes()]
    can_rerank = spec.multivector_model is not None and spec.reranker in (None, spec.multivector_model)
    if not can_rerank:
        space = TuneSpace(space.rrf_k, space.methods, space.weights, space.candidates, [], 0)
    depth = max([*space.candidates, spec.candidates, 100])
    return _Plan(families, space, depth, default_setting(runner, families, can_rerank), can_rerank)


def _clock(progress: Progress | None, total: int) -> _Clock:
    """A clock whose progress reaches `progress` on the event loop (the grid runs in a worker thread)."""
    loop, report = asyncio.get_running_loop(), progress or (lambda done, total: None)

    def safe(done: int, total: int) -> None:
        loop.call_soon_threadsafe(report, done, total)

    return _Clock(safe, total, math.inf)


async def _rows(
    runner: SearchRunner, plan: _Plan, req: TuneRequest, named: list[tuple[str, Setting]], train: tuple[Any, ...]
) -> tuple[list[TuneRow], int]:
    """Figures of the reported settings on the tuning split, then -- reading the held-out judgments only now,
    after the choice -- on the held-out split; and the number of held-out queries."""
    caches, qids, ms = train
    on_train = await asyncio.to_thread(lambda: [_figures(n, s, caches, qids, req.train, ms) for n, s in named])
    on_test: list[EvalRow | None] = [None] * len(named)
    test_qids = relevant_qids(req.queries, req.test) if req.test is not None else []
    if req.test is not None and test_qids:
        t_caches, t_ms = await query_caches(runner, plan.families, req.queries, test_qids, req.test, plan.depth, _skip)
        test = req.test
        on_test = list(
            await asyncio.to_thread(lambda: [_figures(n, s, t_caches, test_qids, test, t_ms) for n, s in named])
        )
        for i, (n, s) in enumerate(named):  # what a search with the setting returns, top 10 as served
            served = await _served(runner, n, s, plan.families, req.queries, test_qids, test)
            row = on_test[i]
            assert row is not None
            on_test[i] = row._replace(ndcg_at_10=served.ndcg_at_10, mrr_at_10=served.mrr_at_10)
    rows = [TuneRow(n, s, tr, te) for (n, s), tr, te in zip(named, on_train, on_test, strict=True)]
    return rows, len(test_qids)


async def _served(
    runner: SearchRunner,
    name: str,
    setting: Setting,
    families: Sequence[str],
    queries: Mapping[str, str],
    qids: Sequence[str],
    qrels: Qrels,
) -> EvalRow:
    """A setting's figures from the service's own search (top 10, its candidates and rerank), query by query:
    the held-out nDCG@10 and MRR@10 a collection with this default then answers. (The cached lists the choice
    is made on are searched once at the deepest candidate count; an approximate index -- the two-stage token
    index -- can rank a shallower search a little differently.)"""
    one = len(setting.modes) == 1
    run = {}
    for qid in qids:
        plan = SearchPlan(
            queries[qid],
            top_k=10,
            mode=setting.modes[0] if one else "hybrid",  # type: ignore[arg-type]
            fusion=None if one else setting.fusion(families),
            rerank=Rerank(None, setting.rerank) if setting.rerank else None,
            candidates=setting.candidates,
            modes=tuple(setting.modes),  # type: ignore[arg-type]
            group_by="document",
        )
        run[qid] = [h.doc_id for h in await runner.search(plan)]
    return evaluate_run(name, setting.label(), run, {q: qrels[q] for q in qids})


def _skip(n: int) -> None:
    """No progress for the held-out search (the job's steps are the tuning queries and the settings)."""


async def tune(runner: SearchRunner, req: TuneRequest, progress: Progress | None = None) -> TuneReport:
    """Choose a setting on `req.train` (the choice rule itself chosen by cross-validation within it, see
    :mod:`retrieval.evaluation.tune.choice`); report it and the default on both splits."""
    started = time.monotonic()
    qids = relevant_qids(req.queries, req.train)
    if not qids:
        raise InvalidRequestError("no judged query with a relevant document and a text to tune on", param="qrels")
    plan = _plan(runner, req.space)
    clock = _clock(progress, len(qids) + _space_size(plan.families, plan.space, plan.default, plan.can_rerank))
    caches, ms = await query_caches(runner, plan.families, req.queries, qids, req.train, plan.depth, clock.tick)
    clock.deadline = time.monotonic() + req.budget_s
    scores = await asyncio.to_thread(_grid, caches, plan.families, plan.space, plan.default, ms, clock)
    procs = procedures(scores.settings, plan.space, plan.default)
    choice = await asyncio.to_thread(select, scores.matrix(), procs, req.folds)
    chosen = scores.settings[choice.row]
    cv = None
    if req.test is None:
        cv = await asyncio.to_thread(cross_validate, scores.matrix(), 0, procs, req.folds)
    named = _report_settings(plan.families, chosen, plan.default, plan.depth)
    rows, n_test = await _rows(runner, plan, req, named, (caches, qids, ms))
    tried, total = clock.done - len(qids), clock.total - len(qids)
    seconds = time.monotonic() - started
    fusion = chosen.fusion(plan.families)
    warnings = await asyncio.to_thread(judged_warnings, runner, req.train, "tuning split")
    if req.test is not None:  # (read after the choice, as the held-out figures are)
        warnings += await asyncio.to_thread(judged_warnings, runner, req.test, "held-out split")
    return TuneReport(
        chosen,
        plan.default,
        fusion,
        rows,
        tried,
        total,
        seconds,
        len(qids),
        n_test,
        plan.families,
        cv,
        procedure=choice.procedure,
        estimates=choice.estimates,
        warnings=warnings,
    )
