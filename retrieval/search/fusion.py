"""Fusion of ranked lists (one per retrieval stage) into one ranking: pure numpy, no I/O.

Three methods, chosen by :class:`FusionConfig`:

* ``rrf`` — reciprocal rank fusion: ``sum_l w_l / (k + rank_l(id))``, rank starting at 1 (Cormack et al.);
* ``weighted`` — each list's scores min-max normalised to [0, 1], then ``sum_l w_l * norm_l(id)``;
* ``dbsf`` — distribution-based score fusion as Qdrant does it: each list normalised by
  ``(s - (mu - 3 sigma)) / (6 sigma)`` (sample sigma, no clipping; one or equal scores give 0.5), then summed.

An id absent from a list contributes nothing from that list. Entries whose id is ``-1`` (the index layer's
"missing" marker) are ignored, and an id repeated within one list counts once, at its best (first) place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from retrieval.errors import InvalidRequestError
from retrieval.spec.fusion import FusionConfig, FusionMethod

__all__ = ["FusionConfig", "FusionMethod", "RankedList", "fuse", "list_terms"]

_MISSING_ID = -1


class RankedList(NamedTuple):
    """One stage's hits, best first. ``-1`` ids (and their scores) are placeholders and are ignored."""

    ids: npt.NDArray[np.int64]  # int64 (n,) document/chunk ids, best first
    scores: npt.NDArray[np.float32]  # float32 (n,) the stage's scores, descending


def _empty() -> RankedList:
    return RankedList(np.empty(0, np.int64), np.empty(0, np.float32))


def _clean(ranked: RankedList) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Drop ``-1`` ids and repeated ids (keeping the first, best place); int64 (m,), float64 (m,)."""
    ids = np.asarray(ranked.ids, dtype=np.int64).reshape(-1)
    scores = np.asarray(ranked.scores, dtype=np.float64).reshape(-1)
    keep = ids != _MISSING_ID
    ids, scores = ids[keep], scores[keep]
    _, first = np.unique(ids, return_index=True)
    order = np.sort(first)
    return ids[order], scores[order]


def _minmax(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Min-max to [0, 1]; a list whose scores are all equal maps to 1.0."""
    lo, hi = float(scores.min()), float(scores.max())
    if hi == lo:
        return np.ones_like(scores)
    return (scores - lo) / (hi - lo)


def _dbsf(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``(s - (mu - 3 sigma)) / (6 sigma)`` with the sample sigma (n - 1), not clipped, as Qdrant does.

    A list of one score, or of equal scores, maps to 0.5. Scores beyond mu +- 3 sigma fall outside [0, 1]
    rather than tie at its ends (clipping ties the strongest hits of a list and loses their order).
    """
    if len(scores) < 2:
        return np.full_like(scores, 0.5)
    mu, sigma = float(scores.mean()), float(scores.std(ddof=1))
    if sigma == 0.0:
        return np.full_like(scores, 0.5)
    return (scores - (mu - 3.0 * sigma)) / (6.0 * sigma)


def _weights(names: list[str], config: FusionConfig) -> dict[str, float]:
    """Each list's weight: the given one, else 1/n for ``weighted`` and 1 for ``rrf`` / ``dbsf``."""
    default = 1.0 / len(names) if config.method == "weighted" else 1.0
    given = config.weights or {}
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise InvalidRequestError(
            f"fusion.weights names lists that this search does not produce: {unknown}; lists: {sorted(names)}.",
            param="fusion.weights",
            received=dict(given),
            allowed=sorted(names),
        )
    bad = {name: w for name, w in given.items() if not _is_weight(w)}
    if bad:
        raise InvalidRequestError(
            f"fusion.weights must be finite numbers >= 0; got {bad}.",
            param="fusion.weights",
            received=dict(given),
            allowed="finite numbers >= 0",
        )
    return {name: float(given.get(name, default)) for name in names}


def _is_weight(w: object) -> bool:
    return isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w) and w >= 0


def _check_k(k: object) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InvalidRequestError(
            f"fusion.k must be an integer >= 1; got {k!r}.", param="fusion.k", received=k, allowed=">= 1"
        )


def _contributions(ids: npt.NDArray[np.int64], scores: npt.NDArray[np.float64], config: FusionConfig) -> np.ndarray:
    """float64 (m,): one list's term per id, before its weight."""
    if config.method == "rrf":
        return 1.0 / (config.k + np.arange(1, len(ids) + 1, dtype=np.float64))
    if config.method == "weighted":
        return _minmax(scores)
    return _dbsf(scores)


def list_terms(ranked: RankedList, config: FusionConfig) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """One list's ids (``-1`` and repeats dropped) and each one's term in :func:`fuse` before the list's weight:
    int64 (m,), float64 (m,). The fused score of an id is the weighted sum of its terms over the lists.

    >>> ids, terms = list_terms(RankedList(np.array([4, 2]), np.array([3.0, 1.0], np.float32)), FusionConfig(k=1))
    >>> ids.tolist(), terms.tolist()
    ([4, 2], [0.5, 0.3333333333333333])
    """
    ids, scores = _clean(ranked)
    return ids, _contributions(ids, scores, config) if len(ids) else np.zeros(0, np.float64)


def fuse(lists: Mapping[str, RankedList], config: FusionConfig) -> RankedList:
    """Fuse named ranked lists into one: every id of any list, by fused score descending, ties by smaller id.

    Args:
        lists: stage name (``"dense"``, ``"bm25"`` ...) -> that stage's hits, best first.
        config: method, RRF ``k`` and optional per-list ``weights``.

    Returns:
        ids int64 (n,), scores float32 (n,), n = number of distinct ids over all lists.

    Raises:
        InvalidRequestError: ``param="fusion.k"`` for k < 1; ``param="fusion.weights"`` for a weight naming an
            absent list, or one that is negative or not finite.

    >>> a = RankedList(np.array([1, 2, 3]), np.array([0.9, 0.5, 0.1], np.float32))
    >>> b = RankedList(np.array([3, 1, -1]), np.array([12.0, 2.0, -np.inf], np.float32))
    >>> fused = fuse({"dense": a, "bm25": b}, FusionConfig(k=1))  # 1 -> 1/2 + 1/3, 3 -> 1/4 + 1/2
    >>> fused.ids.tolist(), [round(float(s), 4) for s in fused.scores]
    ([1, 3, 2], [0.8333, 0.75, 0.3333])
    >>> fused = fuse({"dense": a, "bm25": b}, FusionConfig(method="weighted"))  # 1 and 3 tie at (1 + 0) / 2
    >>> fused.ids.tolist(), [round(float(s), 4) for s in fused.scores]
    ([1, 3, 2], [0.5, 0.5, 0.25])
    >>> fused = fuse({"dense": a, "bm25": b}, FusionConfig(method="dbsf"))  # a: 1 -> 2/3; b: 3 -> 0.62
    >>> fused.ids.tolist(), [round(float(s), 4) for s in fused.scores]
    ([1, 3, 2], [1.0488, 0.9512, 0.5])
    """
    _check_k(config.k)
    if not lists:
        return _empty()
    weights = _weights(list(lists), config)
    all_ids, all_terms = [], []
    for name, ranked in lists.items():
        ids, scores = _clean(ranked)
        if len(ids):
            all_ids.append(ids)
            all_terms.append(weights[name] * _contributions(ids, scores, config))
    if not all_ids:
        return _empty()
    unique, inverse = np.unique(np.concatenate(all_ids), return_inverse=True)
    fused = np.bincount(inverse, weights=np.concatenate(all_terms), minlength=len(unique)).astype(np.float32)
    order = np.lexsort((unique, -fused))
    return RankedList(unique[order], fused[order])
