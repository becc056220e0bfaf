"""Plain-loop references for document ranking (the grouping tests compare the service against these)."""

from __future__ import annotations

import math

import numpy as np

from retrieval.search.fusion import RankedList


def naive_docs(lst: RankedList, doc_of: dict[int, str], c: int) -> list[tuple[str, float]]:
    """The first `c` documents of a chunk list with their best chunk's score (a plain loop)."""
    out: dict[str, float] = {}
    for cid, s in zip(lst.ids.tolist(), lst.scores.tolist(), strict=True):
        if len(out) == c and doc_of[cid] not in out:
            break
        out[doc_of[cid]] = max(out.get(doc_of[cid], -math.inf), s)
    return list(out.items())


def naive_rrf(per_list: list[list[tuple[str, float]]], k: int) -> list[str]:
    total: dict[str, float] = {}
    for docs in per_list:
        for rank, (d, _) in enumerate(docs, start=1):
            total[d] = total.get(d, 0.0) + 1.0 / (k + rank)
    return sorted(total, key=lambda d: (-np.float32(total[d]), d))


def naive_minmax(per_list: list[list[tuple[str, float]]]) -> list[str]:
    total: dict[str, float] = {}
    for docs in per_list:
        lo, hi = min(s for _, s in docs), max(s for _, s in docs)
        for d, s in docs:
            total[d] = total.get(d, 0.0) + (s - lo) / (hi - lo) / len(per_list)
    return sorted(total, key=lambda d: (-np.float32(total[d]), d))
