"""One request's calls to the shards of a collection, and how their answers merge.

`Fanout` applies the request's policy to shards that do not answer: raise `ShardUnavailableError` (503 naming
them), or, for a search that set `allow_partial`, go on with the others and remember which were missing.
`merge_results` keeps the best `k` of every shard's best `k`, which is exactly the unsharded best `k` of an
exact index (each shard's own best `k` contains every one of its documents in the global best `k`); equal scores
are ordered by ascending collection-wide id, as each index orders them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from index import SearchResult
from retrieval.errors import ShardUnavailableError
from retrieval.sharding.group import ShardDown, ShardGroup

__all__ = ["Fanout", "merge_results"]


class Fanout:
    """The calls of one request to one collection's shards."""

    def __init__(self, collection: str, group: ShardGroup, timeout_s: float, *, allow_partial: bool = False) -> None:
        self.collection, self.group, self.timeout_s = collection, group, timeout_s
        self.allow_partial = allow_partial  # a search asked for the shards that answer rather than a 503
        self.missing: dict[int, str] = {}  # shard -> why it did not answer (only with allow_partial)

    @property
    def size(self) -> int:
        return self.group.size

    def all(self, method: str, *args: Any) -> dict[int, Any]:
        """`method(*args)` on every shard (those already missing in this request are not asked again)."""
        return self.each({s: (method, args) for s in range(self.group.size) if s not in self.missing})

    def each(self, calls: Mapping[int, tuple[str, tuple[Any, ...]]]) -> dict[int, Any]:
        """`{shard: (method, args)}` concurrently; answers of the shards that answered."""
        if not calls:
            return {}
        answers = self.group.call(calls, self.timeout_s)
        down = {s: a.reason for s, a in answers.items() if isinstance(a, ShardDown)}
        if down:
            if not self.allow_partial:
                detail = "; ".join(f"shard {s}: {why}" for s, why in sorted(down.items()))
                raise ShardUnavailableError(self.collection, sorted(down), self.group.size, detail)
            self.missing.update(down)
        return {s: a for s, a in answers.items() if not isinstance(a, ShardDown)}

    def answered(self) -> list[int]:
        """The shards that answered every call of this request."""
        return [s for s in range(self.group.size) if s not in self.missing]


def merge_results(results: Sequence[SearchResult], n_queries: int, k: int) -> SearchResult:
    """The best `k` per query row over every shard's answer (ids collection-wide, -1 / -inf padding)."""
    scores = np.full((n_queries, k), -np.inf, np.float32)
    ids = np.full((n_queries, k), -1, np.int64)
    for row in range(n_queries):
        all_ids = np.concatenate([r.ids[row] for r in results]) if results else np.zeros(0, np.int64)
        all_scores = np.concatenate([r.scores[row] for r in results]) if results else np.zeros(0, np.float32)
        keep = all_ids >= 0
        all_ids, all_scores = all_ids[keep], all_scores[keep]
        order = np.lexsort((all_ids, -all_scores.astype(np.float64)))[:k]
        ids[row, : order.size], scores[row, : order.size] = all_ids[order], all_scores[order]
    return SearchResult(scores, ids)


def by_shard(values: Mapping[int, Any]) -> list[Any]:
    """Answers in shard order."""
    return [values[s] for s in sorted(values)]
