"""One search, stage by stage: candidates per representation -> fusion -> optional rerank -> hits.

Every stage's score travels with the hit (`scores[stage]`), so a client sees why a passage ranked where it did.
Filters become an allowed-id set before any index is asked, so a filtered search returns `top_k` hits whenever
that many chunks match (no post-filter starvation).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from encoder import MultimodalInput
from index import SearchResult
from retrieval.errors import InvalidRequestError
from retrieval.indexes import Family, IndexSet
from retrieval.search.documents import GroupBy
from retrieval.search.fusion import FusionConfig, RankedList, fuse
from retrieval.spec.collection import Mode, modes_of

__all__ = [
    "MAX_GROUP_SIZE",
    "Candidates",
    "Rerank",
    "SearchPlan",
    "check_grouping",
    "family_query",
    "fuse_candidates",
    "modes_of",
    "ranked",
    "weighted_modes",
]


@dataclass(frozen=True)
class Rerank:
    """Rerank the best `top_n` candidates with a served model (cross-encoder, or late interaction)."""

    model: str | None = None  # served model; None = the collection's default reranker
    top_n: int = 20  # candidates reranked


@dataclass(frozen=True)
class SearchPlan:
    """A validated search request."""

    query: str | MultimodalInput | None  # the query (None for "more like this")
    top_k: int = 10  # hits returned
    mode: Mode = "hybrid"  # representation(s) searched
    filter: Any = None  # metadata filter (operator form), None = everything
    fusion: FusionConfig | None = None  # hybrid fusion; None = the collection's default
    rerank: Rerank | None = None  # optional rerank stage
    candidates: int = 100  # candidates per representation before fusion / rerank
    like: str | None = None  # "more like this": a stored document id
    modes: tuple[Family, ...] = ()  # the families searched (filled by `modes_of`)
    allow_partial: bool = False  # sharded collection: answer from the shards that answer (else 503 naming one)
    group_by: GroupBy | None = None  # "document": the top_k are top_k distinct documents (None: chunks)
    group_size: int = 1  # with group_by: each document's best chunks returned with it

    def __post_init__(self) -> None:
        check_grouping(self.group_by, self.group_size)


MAX_GROUP_SIZE = 100
"""The most chunks a grouped hit carries."""


def check_grouping(group_by: GroupBy | None, group_size: int) -> None:
    """`group_size` in 1..100, and above 1 only with `group_by` (400 naming the field otherwise)."""
    if not 1 <= group_size <= MAX_GROUP_SIZE:
        raise InvalidRequestError(
            f"group_size must be between 1 and {MAX_GROUP_SIZE}",
            param="group_size",
            received=group_size,
            allowed=[1, MAX_GROUP_SIZE],
        )
    if group_by is None and group_size != 1:
        raise InvalidRequestError(
            'group_size needs "group_by": "document" (without it every hit is one chunk)',
            param="group_size",
            received=group_size,
        )


def weighted_modes(modes: tuple[Family, ...], fusion: FusionConfig) -> tuple[tuple[Family, ...], FusionConfig]:
    """The families a hybrid search fuses, and the fusion over them: those the fusion gives a weight of 0 are
    not searched at all (a tuned default may leave a representation out), unless that would leave none.

    >>> modes, fusion = weighted_modes(("dense", "bm25"), FusionConfig(weights={"dense": 2.0, "bm25": 0.0}))
    >>> modes, fusion.weights
    (('dense',), {'dense': 2.0})
    """
    weights = fusion.weights or {}
    kept = tuple(m for m in modes if weights.get(m, 1.0) != 0) or modes
    if not weights:
        return kept, fusion
    left = {m: w for m, w in weights.items() if w != 0 or m in kept}  # a weight naming no list still fails in fuse
    return kept, msgspec.structs.replace(fusion, weights=left)


def family_query(family: Family, values: Mapping[str, Any], texts: Sequence[str], i: int) -> Any:
    """The query of row `i` in the form the family's index takes (a batch of one)."""
    if family == "bm25":
        return [texts[i]]
    if family == "dense":
        return np.asarray(values["dense"][i : i + 1], np.float32)
    return [values[family][i]]


def ranked(result: SearchResult, row: int = 0) -> RankedList:
    """Row `row` of an index answer as a ranked list (missing slots dropped)."""
    keep = result.ids[row] >= 0
    return RankedList(result.ids[row][keep].astype(np.int64), result.scores[row][keep].astype(np.float32))


@dataclass
class Candidates:
    """The ranked lists of one query, per family, and the fused order."""

    lists: dict[str, RankedList] = field(default_factory=dict)  # family -> its ranked chunk ids
    order: RankedList | None = None  # final order (fused, or the single list)
    stage: str = "dense"  # the stage whose score is the final one before rerank


def fuse_candidates(cands: Candidates, fusion: FusionConfig) -> Candidates:
    """Fuse several lists (the single list is its own order)."""
    if len(cands.lists) == 1:
        ((stage, only),) = cands.lists.items()
        cands.order, cands.stage = only, stage
    else:
        cands.order, cands.stage = fuse(cands.lists, fusion), "fusion"
    return cands


async def search_families(
    indexes: IndexSet,
    plan: SearchPlan,
    values: Mapping[str, Any],
    texts: Sequence[str],
    allowed: npt.NDArray[np.int64] | None,
) -> Candidates:
    """Ask each family's index for its candidates of query 0 (off the event loop)."""
    k = max(plan.candidates, plan.top_k)

    def run() -> Candidates:
        cands = Candidates()
        for family in plan.modes:
            result = indexes.search(family, family_query(family, values, texts, 0), k, allowed)
            cands.lists[family] = ranked(result)
        return cands

    return await asyncio.to_thread(run)
