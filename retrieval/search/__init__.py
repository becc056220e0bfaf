"""Searching one collection: the plan of a request (`planner`), query vectors (`queries`), candidates from each
index, fusion of ranked lists (`fusion`, pure numpy), metadata filters compiled to SQL (`filters`), documents
ranked from chunks (`documents`) and the runner that joins them with the store and a rerank (`hits`). The
fusion and filter types are re-exported here.

May import: `retrieval.indexes`, `retrieval.spec`, `retrieval.store`, `retrieval.models` (encoders, the
reranker), `retrieval.common`, `retrieval.errors`, and `encoder` / `index`; never `ingest` or above."""

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
