"""The fusion settings a collection keeps as its default and a search may override: which formula combines the
ranked lists of several representations (`retrieval.search.fusion` runs it)."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["FusionConfig", "FusionMethod"]

FusionMethod = Literal["rrf", "weighted", "dbsf"]
"""How `retrieval.search.fusion.fuse` combines lists: reciprocal ranks, min-max scores, or mean +- 3 sigma scores."""


class FusionConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The request's ``fusion`` object: ``{"method": "rrf", "k": 60}`` by default."""

    method: FusionMethod = "rrf"  # which formula combines the lists
    k: int = 60  # RRF smoothing constant (>= 1); larger k flattens the advantage of top ranks
    weights: dict[str, float] | None = None  # list name -> weight (finite, >= 0); None = method's default
