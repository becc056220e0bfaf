"""Search building blocks: fusion of ranked lists and metadata filters (pure; no encoder, store or HTTP)."""

from retrieval.search.filters import (
    And,
    Compare,
    CompareOp,
    Filter,
    Membership,
    MembershipOp,
    Or,
    compile_filter,
    matches,
    parse_filter,
)
from retrieval.search.fusion import FusionConfig, FusionMethod, RankedList, fuse

__all__ = [
    "And",
    "Compare",
    "CompareOp",
    "Filter",
    "FusionConfig",
    "FusionMethod",
    "Membership",
    "MembershipOp",
    "Or",
    "RankedList",
    "compile_filter",
    "fuse",
    "matches",
    "parse_filter",
]
