"""Encode queries for each representation a search needs, with the query-side prompt or mode of each model.

dense: the `query` sentence-transformers prompt (e5's "query: "); multi-vector: ColBERT's query mode (marker
and [MASK] expansion) or BGE-M3's token vectors; sparse: BGE-M3's lexical weights; bm25: the text itself.
One engine serving several representations (BGE-M3) runs one combined pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from retrieval.representations import VECTOR_KINDS, Encoders, encode_calls, values_of

__all__ = ["QueryVectors", "query_vectors"]


@dataclass
class QueryVectors:
    """Per representation, one query value per input text (float32 (n, d); list of (m, d); list of dicts)."""

    texts: list[str]  # the query texts (the BM25 representation)
    values: dict[str, Any] = field(default_factory=dict)  # "dense" / "multivector" / "sparse" -> values


async def query_vectors(enc: Encoders, texts: list[str], wanted: Sequence[str]) -> QueryVectors:
    """Encode `texts` for every representation in `wanted` (bm25 needs no encoding)."""
    out = QueryVectors(list(texts))
    for engine in enc.engines():
        kinds = [k for k in VECTOR_KINDS if k in wanted and getattr(enc, k) is engine]
        if not kinds:
            continue
        plan = encode_calls(engine, kinds, out.texts, "query")
        results = await engine.run([call for _, call in plan])
        for (call_kinds, _), result in zip(plan, results, strict=True):
            out.values.update(values_of(call_kinds, result))
    return out
