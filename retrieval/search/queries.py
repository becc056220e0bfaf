"""Encode queries for each representation a search needs, with the query-side prompt or mode of each model.

dense: the `query` sentence-transformers prompt (e5's "query: "); multi-vector: ColBERT's query mode (marker
and [MASK] expansion) or BGE-M3's token vectors; sparse: BGE-M3's lexical weights; bm25: the text itself.
One engine serving several representations (BGE-M3) runs one combined pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from encoder import MultimodalInput
from retrieval.errors import InvalidRequestError
from retrieval.spec.collection import CollectionSpec
from retrieval.spec.encoders import VECTOR_KINDS, Encoders, encode_calls, image_call, values_of

__all__ = ["QueryVectors", "image_modes", "image_query_vectors", "query_vectors"]


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


def image_modes(spec: CollectionSpec, enc: Encoders, query: MultimodalInput, modes: Sequence[str]) -> tuple[Any, ...]:
    """The families a query with images searches: the multi-vector one (it must read images), plus the text
    families when the query also has text. A mode that cannot take the query is a 400."""
    if not enc.visual or "multivector" not in modes:
        raise InvalidRequestError(
            f"collection `{spec.name}` cannot search by image in mode(s) {list(modes)}: image queries need the "
            "multivector mode of a collection whose multi-vector model reads images",
            param="query",
            allowed=["multivector", "hybrid"] if enc.visual else [],
        )
    if query.text().strip():
        return tuple(modes)
    return ("multivector",)


async def image_query_vectors(enc: Encoders, query: MultimodalInput, wanted: Sequence[str]) -> QueryVectors:
    """Query values for a query with images: the multi-vector of the whole item, encoded as a document is (an
    image query identical to a stored page gives that page's own vectors), and the text families over its text."""
    engine = enc.multivector
    assert engine is not None  # image_modes checked it
    text = query.text()
    out = await query_vectors(enc, [text], [k for k in wanted if k != "multivector"])
    (result,) = await engine.run([image_call(engine, [query], "document")])
    out.values["multivector"] = result.multivectors()
    return out
