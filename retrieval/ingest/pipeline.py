"""From source documents to store records: chunk with the model's tokenizer, encode every representation
the collection keeps (document prompts applied), attach client vectors, hash for idempotent re-ingestion.

One batch of documents becomes one encode job per model (BGE-M3 gives dense, multi-vector and sparse from one
pass), so the shared batcher sees every chunk of the batch at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from encoder import EncodeCall, EncodeResult, Engine
from retrieval.errors import InvalidRequestError
from retrieval.ingest.chunking import TextChunk, chunk_text
from retrieval.ingest.documents import SourceDocument, content_hash
from retrieval.spec.collection import ChunkingSpec, CollectionSpec
from retrieval.spec.encoders import VECTOR_KINDS, Encoders, combined, encode_calls, values_of
from retrieval.store import ChunkRecord, DocumentRecord

__all__ = ["IngestPlan", "chunk_document", "finish", "hash_document", "plan_ingest"]

_WORDS = re.compile(r"\S+")
_BM25_ONLY_CHUNK = 256  # words per chunk when no model tokenizer is involved


def _budget(engine: Engine | None, chunking: ChunkingSpec) -> int:
    """Content tokens per chunk: the collection's setting, capped by what the model reads (specials and the
    document prompt left out)."""
    if engine is None:
        return chunking.max_tokens or _BM25_ONLY_CHUNK
    prompt = engine.prompt("document")
    used = engine.num_special_tokens + (len(engine.tokenize(prompt, add_special_tokens=False)) if prompt else 0)
    limit = engine.max_model_len - used
    return max(1, min(chunking.max_tokens or limit, limit))


def _spans(engine: Engine | None, text: str) -> list[tuple[int, int]]:
    if engine is None:
        return [(m.start(), m.end()) for m in _WORDS.finditer(text)]
    return engine.token_spans(text)


def chunk_document(doc: SourceDocument, engine: Engine | None, chunking: ChunkingSpec) -> tuple[list[TextChunk], bool]:
    """(chunks, truncated): token windows with overlap, or (`truncate`) one chunk of the whole text that the
    model reads up to its limit; `truncated` says the model did not see all of it."""
    if not doc.text.strip():
        raise InvalidRequestError(f"document `{doc.id}` has no text", param="documents.text", received=doc.id)
    spans, budget = _spans(engine, doc.text), _budget(engine, chunking)
    if chunking.mode == "truncate" or doc.vectors:
        # one chunk holding the whole text: BM25 indexes all of it, the model reads its first `budget` tokens
        # (the encode call truncates at the model's limit: the BEIR recipe), and the cut is reported
        return [TextChunk(doc.text, 0, 0, len(doc.text))], len(spans) > budget
    return chunk_text(doc.text, spans, budget, min(chunking.overlap, budget - 1)), False


@dataclass
class IngestPlan:
    """What one batch will write: records without vectors yet, and the encode calls that fill them."""

    records: list[DocumentRecord]  # chunk text and spans; vectors attached by `finish`
    chunks: list[list[TextChunk]]  # per record
    truncated: list[str]  # ids of documents cut at the model's limit (truncate mode / client vectors)
    client: list[dict[str, object]]  # per record, the client's vectors by kind
    calls: dict[str, list[EncodeCall]]  # engine name -> its calls
    roles: dict[str, list[tuple[list[str], list[int]]]]  # engine name -> per call: (kinds it feeds, chunk positions)


def _client_vectors(doc: SourceDocument, spec: CollectionSpec) -> dict[str, object]:
    vectors = dict(doc.vectors or {})
    unknown = sorted(set(vectors) - set(VECTOR_KINDS))
    if unknown:
        raise InvalidRequestError(
            f"document `{doc.id}`: unknown vector kinds {unknown}", param="vectors", allowed=list(VECTOR_KINDS)
        )
    for kind in vectors:
        if kind not in spec.modes():
            raise InvalidRequestError(
                f"document `{doc.id}` brings `{kind}` vectors but the collection keeps no {kind} representation",
                param=f"vectors.{kind}",
            )
    return vectors


def _vector_bytes(vectors: dict[str, object]) -> bytes | None:
    if not vectors:
        return None
    return json.dumps(vectors, sort_keys=True, default=str).encode()


def hash_document(doc: SourceDocument, spec: CollectionSpec) -> str:
    """The content hash a stored copy of `doc` must match for a re-ingest to be skipped."""
    return content_hash(doc, _vector_bytes(_client_vectors(doc, spec)))


def plan_ingest(docs: Sequence[SourceDocument], spec: CollectionSpec, enc: Encoders) -> IngestPlan:
    """Chunk every document and decide the encode calls (no model runs here; tokenises for spans)."""
    records, chunk_lists, truncated, client = [], [], [], []
    for doc in docs:
        vectors = _client_vectors(doc, spec)
        chunks, cut = chunk_document(doc, enc.chunker, spec.chunking)
        if cut:
            truncated.append(doc.id)
        chunk_lists.append(chunks)
        client.append(vectors)
        records.append(
            DocumentRecord(
                id=doc.id,
                text=doc.text,
                metadata=dict(doc.metadata),
                content_hash=content_hash(doc, _vector_bytes(vectors)),
                source=doc.source,
                page=doc.page,
            )
        )
    plan = IngestPlan(records, chunk_lists, truncated, client, {}, {})
    _plan_calls(plan, enc)
    return plan


def _missing(plan: IngestPlan, kinds: Sequence[str]) -> list[int]:
    """Flat chunk positions where the client gave none of `kinds` (those are encoded)."""
    out, i = [], 0
    for chunks, client in zip(plan.chunks, plan.client, strict=True):
        for _ in chunks:
            if any(k not in client for k in kinds):
                out.append(i)
            i += 1
    return out


def _plan_calls(plan: IngestPlan, enc: Encoders) -> None:
    """The encode calls over the chunks whose vectors the client did not give (document side)."""
    texts = [c.text for chunks in plan.chunks for c in chunks]
    for engine in enc.engines():
        kinds = [k for k in VECTOR_KINDS if getattr(enc, k) is engine]
        for group in [kinds] if combined(engine, kinds) else [[k] for k in kinds]:
            rows = _missing(plan, group)
            for call_kinds, call in encode_calls(engine, group, [texts[r] for r in rows], "document") if rows else []:
                plan.calls.setdefault(engine.name, []).append(call)
                plan.roles.setdefault(engine.name, []).append((call_kinds, rows))


def finish(plan: IngestPlan, results: dict[str, list[EncodeResult]]) -> list[DocumentRecord]:
    """Attach the encoded (or client) vectors to each chunk of each record."""
    flat: dict[str, dict[int, object]] = {k: {} for k in VECTOR_KINDS}
    for name, roles in plan.roles.items():
        for (kept, rows), result in zip(roles, results[name], strict=True):
            for kind, values in values_of(kept, result).items():
                flat[kind].update(zip(rows, values, strict=True))
    out, i = [], 0
    for record, chunks, client in zip(plan.records, plan.chunks, plan.client, strict=True):
        built = []
        for c in chunks:
            vec = {k: client[k] if k in client else flat[k].get(i) for k in VECTOR_KINDS}
            built.append(
                ChunkRecord(
                    text=c.text,
                    position=c.position,
                    char_start=c.char_start,
                    char_end=c.char_end,
                    page=record.page,
                    dense=None if vec["dense"] is None else np.asarray(vec["dense"], np.float32),
                    multivector=None if vec["multivector"] is None else np.asarray(vec["multivector"], np.float32),
                    sparse=_sparse(vec["sparse"]),
                )
            )
            i += 1
        out.append(_with_chunks(record, tuple(built)))
    return out


def _sparse(value: object) -> dict[int, float] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequestError("sparse vectors are objects of token id -> weight", param="vectors.sparse")
    try:
        return {int(k): float(v) for k, v in value.items()}
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"sparse vector keys must be token ids: {exc}", param="vectors.sparse") from exc


def _with_chunks(record: DocumentRecord, chunks: tuple[ChunkRecord, ...]) -> DocumentRecord:
    return DocumentRecord(
        id=record.id,
        text=record.text,
        metadata=record.metadata,
        content_hash=record.content_hash,
        source=record.source,
        page=record.page,
        chunks=chunks,
    )
