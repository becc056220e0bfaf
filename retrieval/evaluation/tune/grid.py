"""The fusion tuner's search space, and a fast scorer that tries many fusion settings on cached ranked lists.

A :class:`Setting` is a subset of the collection's representations (weights of 0 leave one out), a fusion
method (RRF with k in {2, 10, 60}, min-max ``weighted``, ``dbsf``), per-list weights from a grid, the candidates
per list, and an optional rerank depth. Every representation is searched once per query at the deepest
candidate count; a setting truncates those cached lists, so trying a setting costs no search.

:func:`score_group` scores every weight vector of one (method, k, candidates) group at once: per query, the terms
of each list over the union of ids form a matrix ``C (u, f)``; ``C @ W.T`` gives the fused score of every id under
every weight vector, and nDCG@10 follows from one sort per column. It agrees with :func:`fuse` (same terms, ties
by smaller id); the tuner recomputes the figures it reports through :func:`fuse` itself.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import msgspec
import numpy as np
import numpy.typing as npt

from retrieval.search.documents import list_depth
from retrieval.search.fusion import FusionConfig, FusionMethod, RankedList, list_terms

__all__ = [
    "Judged",
    "QueryCache",
    "Setting",
    "TuneSpace",
    "ndcg_ranked",
    "score_group",
    "setting_of",
    "settings_of",
]

_DEPTH = 10  # nDCG@10, the figure tuned
_DISCOUNT = 1.0 / np.log2(np.arange(2, _DEPTH + 2))  # float64 (10,): 1 / log2(rank + 1)


class TuneSpace(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the tuner tries (each axis crossed with the others, bounded by the time budget)."""

    rrf_k: list[int] = msgspec.field(default_factory=lambda: [60, 10, 2])  # RRF smoothing constants
    methods: list[FusionMethod] = msgspec.field(default_factory=lambda: ["rrf", "weighted", "dbsf"])  # formulas
    weights: list[float] = msgspec.field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])  # per-list grid
    candidates: list[int] = msgspec.field(default_factory=lambda: [100, 50, 200])  # per-list depths
    rerank: list[int] = msgspec.field(default_factory=lambda: [20, 50])  # exact-MaxSim rerank depths to try
    rerank_top: int = 10  # best fusion settings the rerank depths are tried on


@dataclass(frozen=True)
class Setting:
    """One point of the search space."""

    modes: tuple[str, ...]  # representations fused (one: that list alone)
    weights: tuple[float, ...]  # weight of each of `modes` (> 0)
    method: FusionMethod = "rrf"  # fusion formula (irrelevant for one mode)
    k: int = 60  # RRF constant
    candidates: int = 100  # candidates per list before fusion
    rerank: int = 0  # fused candidates reranked with exact MaxSim over the token vectors (0 = none)

    def fusion(self, families: Sequence[str]) -> FusionConfig:
        """As a collection's default fusion over all its `families`: the modes left out get weight 0; weights
        are left out when every family takes part with the same weight (the method's default)."""
        given = dict(zip(self.modes, self.weights, strict=True))
        weights = {f: float(given.get(f, 0.0)) for f in families}
        if len(set(weights.values())) == 1:
            return FusionConfig(self.method, self.k)
        return FusionConfig(self.method, self.k, weights)

    def label(self) -> str:
        """A short, readable name, e.g. ``dense+bm25 rrf k=10 w=1:0.5 c=100 rerank 20``."""
        parts = ["+".join(self.modes)]
        if len(self.modes) > 1:
            parts.append(f"rrf k={self.k}" if self.method == "rrf" else self.method)
            if len(set(self.weights)) > 1:
                parts.append("w=" + ":".join(f"{w:g}" for w in self.weights))
        parts.append(f"c={self.candidates}")
        if self.rerank:
            parts.append(f"rerank {self.rerank}")
        return " ".join(parts)


def _weight_vectors(n: int, grid: Sequence[float]) -> list[tuple[float, ...]]:
    """Non-zero weight vectors over n lists, scaled so the largest is 1 and deduplicated (order kept).

    >>> _weight_vectors(2, [0.0, 0.5, 1.0])
    [(1.0, 1.0), (1.0, 0.0), (0.0, 1.0), (1.0, 0.5), (0.5, 1.0)]
    """
    seen: dict[tuple[float, ...], None] = {}
    grid = sorted(set(grid), reverse=True)
    for combo in itertools.product(grid, repeat=n):
        top = max(combo)
        if top > 0:
            seen.setdefault(tuple(round(w / top, 6) for w in combo), None)
    equal = tuple([1.0] * n)
    ordered = sorted(seen, key=lambda w: (w != equal, sum(v == 0 for v in w) == 0, -sum(w)))
    return ordered


def settings_of(
    families: Sequence[str], space: TuneSpace, first: int
) -> Iterator[tuple[tuple[FusionMethod, int, int], list[tuple[float, ...]]]]:
    """The groups to score, most plausible first: ((method, k, candidates), weight vectors over `families`).

    Candidates `first` (the collection's default) come first; single lists appear once, under RRF k=60."""
    vectors = _weight_vectors(len(families), space.weights)
    fused = [w for w in vectors if sum(v > 0 for v in w) > 1]
    single = [w for w in vectors if sum(v > 0 for v in w) == 1]
    variants: list[tuple[FusionMethod, int]] = []
    for method in space.methods:
        ks = space.rrf_k if method == "rrf" else [60]
        variants += [(method, k) for k in ks]
    depths = list(dict.fromkeys([first, *space.candidates]))
    for c in depths:
        for method, k in variants:
            vecs = fused + single if (method, k) == ("rrf", 60) else fused
            if vecs:
                yield (method, k, c), vecs


def setting_of(families: Sequence[str], method: FusionMethod, k: int, c: int, w: Sequence[float]) -> Setting:
    """The setting of weight vector `w` over `families` (zero weights leave a family out)."""
    on = [(f, float(x)) for f, x in zip(families, w, strict=True) if x > 0]
    if len(on) == 1:
        return Setting((on[0][0],), (1.0,), "rrf", 60, c)
    return Setting(tuple(f for f, _ in on), tuple(x for _, x in on), method, k, c)


@dataclass(frozen=True)
class Judged:
    """One query's judgments in the form the scorer reads."""

    gains: Mapping[str, float]  # document id -> gain (grade, negatives as 0)
    idcg: float  # ideal DCG@10 (> 0: queries without a relevant document are left out)


@dataclass
class QueryCache:
    """One query's ranked lists (deepest depth) and, per candidate depth, the union of ids with doc and gain.

    `lists` are what the fast scorer fuses: each representation's documents (as keys, best first, the score of
    each one's best chunk; `doc_of` names them), so that cutting a list at `c` entries is its first `c`
    documents, as a search with `c` candidates fuses them. `chunks` and `chunk_doc` keep the chunk lists they
    came from, which the reported figures and exact-MaxSim reranks use (`retrieval.search.documents`)."""

    lists: dict[str, RankedList]  # family -> its documents (or chunks), best first
    doc_of: Mapping[int, str]  # id in `lists` -> document id (shared by every query)
    judged: Judged  # this query's judgments
    chunks: dict[str, RankedList] = field(default_factory=dict)  # family -> its chunk list, best first
    chunk_doc: Mapping[int, str] = field(default_factory=dict)  # chunk id -> document id
    _unions: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, bool]] = field(default_factory=dict)

    def truncated(self, family: str, c: int) -> RankedList:
        lst = self.lists[family]
        return RankedList(lst.ids[:c], lst.scores[:c])

    def union(self, families: Sequence[str], c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """(ids int64 (u,) ascending, doc index int64 (u,) (-1 unknown), gain float64 (u,), one doc per id)."""
        if c not in self._unions:
            ids = np.unique(np.concatenate([self.truncated(f, c).ids for f in families] or [np.zeros(0, np.int64)]))
            ids = ids[ids >= 0]
            names = [self.doc_of.get(int(i)) for i in ids.tolist()]
            index = {d: n for n, d in enumerate(dict.fromkeys(d for d in names if d is not None))}
            docs = np.array([index[d] if d is not None else -1 for d in names], np.int64)
            gains = np.array([self.judged.gains.get(d, 0.0) if d is not None else 0.0 for d in names], np.float64)
            simple = len(index) == len(names)  # every id known and its own document
            self._unions[c] = (ids, docs, gains, simple)
        return self._unions[c]


def _terms(
    cache: QueryCache, ids: np.ndarray, families: Sequence[str], config: FusionConfig, c: int
) -> tuple[np.ndarray, np.ndarray]:
    """Over the union `ids` (u,): each list's fusion term, float64 (u, f), and whether it holds the id (u, f)."""
    terms = np.zeros((ids.size, len(families)))
    present = np.zeros((ids.size, len(families)))
    for j, family in enumerate(families):
        lst_ids, lst_terms = list_terms(cache.truncated(family, c), config)
        pos = np.searchsorted(ids, lst_ids)
        terms[pos, j] = lst_terms
        present[pos, j] = 1.0
    return terms, present


def ndcg_ranked(
    order: Sequence[int] | npt.NDArray[np.int64], docs: np.ndarray, gains: np.ndarray, idcg: float
) -> float:
    """nDCG@10 of the union rows in `order` (best first): repeated documents count once, unknown ones not at all."""
    seen: set[int] = set()
    dcg, rank = 0.0, 0
    for row in order:
        d = int(docs[row])
        if d < 0 or d in seen:
            continue
        seen.add(d)
        dcg += float(gains[row]) * float(_DISCOUNT[rank])
        rank += 1
        if rank == _DEPTH:
            break
    return dcg / idcg


def _column_ndcg(fused: np.ndarray, docs: np.ndarray, gains: np.ndarray, simple: bool, idcg: float) -> np.ndarray:
    """nDCG@10 of every column of `fused` (u, n) (-inf = absent), ties by row (= smaller id)."""
    order = np.argsort(-fused, axis=0, kind="stable")
    if simple:
        top = order[:_DEPTH]
        got = np.take_along_axis(fused, top, axis=0)
        g = np.where(np.isfinite(got), gains[top], 0.0)
        return np.asarray((g * _DISCOUNT[: top.shape[0], None]).sum(axis=0) / idcg)
    out = np.zeros(fused.shape[1])
    for j in range(fused.shape[1]):
        col = order[:, j]
        out[j] = ndcg_ranked(col[np.isfinite(fused[col, j])], docs, gains, idcg)
    return out


def score_group(
    caches: Sequence[QueryCache], families: Sequence[str], group: tuple[FusionMethod, int, int], vectors: np.ndarray
) -> np.ndarray:
    """nDCG@10 float64 (n_vectors, n_queries) of each weight vector (rows of `vectors` (n, f)) on each query."""
    method, k, candidates = group
    c = list_depth(candidates, _DEPTH)  # the documents a top-10 search fuses per list
    config = FusionConfig(method, k)
    out = np.zeros((vectors.shape[0], len(caches)))
    on = (vectors > 0).astype(np.float64).T  # (f, n)
    for q, cache in enumerate(caches):
        ids, docs, gains, simple = cache.union(families, c)
        if ids.size == 0:
            continue
        terms, present = _terms(cache, ids, families, config, c)
        fused = (terms @ vectors.T).astype(np.float32)  # float32 as `fuse` ranks: equal sums tie, smaller id first
        fused[present @ on == 0] = -math.inf  # an id only in lists the vector leaves out is not a candidate
        out[:, q] = _column_ndcg(fused, docs, gains, simple, cache.judged.idcg)
    return out
