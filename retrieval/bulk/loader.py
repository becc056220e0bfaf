"""The bulk write path: documents in large batches, each one store transaction, then the indexes, then the
next; BM25 and the final dense index kind (IVF past its threshold) are built once at the end.

Durability is the ordinary contract, per batch: a batch counts as loaded (progress, report) only once its
transaction has committed and its chunks are in the indexes. After a crash the store holds whole batches and
the indexes replay them at start; running the same load again skips every document whose content hash is
stored (upsert by id), so it finishes the rest and leaves each document exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from encoder import ModelFingerprint
from retrieval.bulk.provenance import check_provenance, fingerprint_for, read_provenance
from retrieval.bulk.rows import Assembler, Layout, RowError
from retrieval.bulk.source import BulkInput
from retrieval.errors import InvalidRequestError, RetrievalError
from retrieval.indexes import IndexSet
from retrieval.ingest.documents import SourceDocument
from retrieval.ingest.pipeline import finish, hash_document, plan_ingest
from retrieval.spec.collection import CollectionSpec
from retrieval.spec.encoders import Encoders, encode_calls, values_of
from retrieval.store import ChunkRecord, ChunkRow, DocumentRecord, Store, WriteResult

__all__ = ["BulkOptions", "BulkReport", "BulkTarget", "bulk_load"]

Item = DocumentRecord | SourceDocument


class BulkOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How a bulk load reads its input."""

    batch_documents: int = 10_000  # documents per store transaction
    trust_vectors: bool = False  # load vectors whose model record is missing or names another model
    id_column: str | None = None  # document id column; None = doc_id, id or _id, whichever exists
    dense_column: str = "dense"  # dense vector column
    max_errors: int = 1000  # row errors listed in the report (all are counted)


@dataclass
class BulkReport:
    """What a bulk load did; `rejected` lists left-out rows (up to `max_errors`; `failed` counts all)."""

    documents: int = 0  # documents written (new or changed)
    unchanged: int = 0  # documents already stored with the same content hash
    chunks: int = 0  # chunks written
    encoded: int = 0  # documents whose vectors (some or all) were encoded on the way in
    batches: int = 0  # committed batches
    rows: int = 0  # input rows read
    failed: int = 0  # rows left out
    rejected: list[RowError] = field(default_factory=list)  # the first `max_errors` of them
    seq: int = 0  # store sequence number of the last batch
    seconds: float = 0.0  # wall time


@dataclass(frozen=True)
class BulkTarget:
    """The collection a load writes: its settings, engines, store and indexes."""

    name: str  # collection name
    spec: CollectionSpec  # its settings
    encoders: Encoders  # its models
    store: Store  # the source of truth
    indexes: IndexSet  # its live indexes


def _engine_kinds(enc: Encoders) -> dict[str, list[str]]:
    return {e.name: [k for k in ("dense", "multivector", "sparse") if getattr(enc, k) is e] for e in enc.engines()}


def check_inputs(target: BulkTarget, inputs: Sequence[BulkInput], options: BulkOptions) -> list[Layout]:
    """Every input's layout, after refusing any whose vectors another model made (nothing written yet)."""
    wanted = target.spec.vector_kinds()
    by_engine = _engine_kinds(target.encoders)
    expected: dict[str, ModelFingerprint] = {}
    for kind in wanted:
        engine = getattr(target.encoders, kind)
        expected[kind] = fingerprint_for(engine, kind, by_engine[engine.name])
    layouts = []
    for source in inputs:
        layout = Layout.of(source.schema, options.id_column, options.dense_column, source.name)
        found = read_provenance(source.schema.metadata, source.name)
        given = [k for k in layout.kinds if k in wanted]
        check_provenance(found, given, expected, source.name, options.trust_vectors)
        layouts.append(layout)
    return layouts


@dataclass
class _Errors:
    """Row errors into the report: all counted, the first `limit` listed."""

    report: BulkReport
    limit: int

    def add(self, errors: Sequence[RowError]) -> None:
        self.report.failed += len(errors)
        room = max(0, self.limit - len(self.report.rejected))
        self.report.rejected += errors[:room]


def _items(
    inputs: Sequence[BulkInput], layouts: Sequence[Layout], target: BulkTarget, errors: _Errors
) -> Iterator[tuple[int, Item]]:
    row, kinds = 0, list(target.spec.vector_kinds())
    for source, layout in zip(inputs, layouts, strict=True):
        asm = Assembler(layout, target.indexes.dims, kinds, first_row=row)
        for batch in source.batches():
            yield from asm.feed(batch)
            errors.add(asm.errors)
            asm.errors.clear()
        yield from asm.close()
        errors.add(asm.errors)
        row = errors.report.rows = asm.row


def _batches(items: Iterator[tuple[int, Item]], size: int, errors: _Errors) -> Iterator[list[Item]]:
    """Batches of `size` documents; an id seen before in the same batch is reported and left out."""
    batch: dict[str, Item] = {}
    for row, item in items:
        if item.id in batch:
            errors.add(
                [RowError(row, item.id, "id", f"document id `{item.id}` repeats within one batch; the first is kept")]
            )
            continue
        batch[item.id] = item
        if len(batch) >= size:
            yield list(batch.values())
            batch = {}
    if batch:
        yield list(batch.values())


def _encode_sources(target: BulkTarget, docs: list[SourceDocument]) -> list[DocumentRecord]:
    """Documents without (all) vectors: chunked and encoded exactly as an ordinary ingest does."""
    if not docs:
        return []
    plan = plan_ingest(docs, target.spec, target.encoders)
    engines = {e.name: e for e in target.encoders.engines()}
    results = {name: engines[name].run_sync(calls) for name, calls in plan.calls.items()}
    return finish(plan, results)


def _fill_chunks(target: BulkTarget, records: list[DocumentRecord]) -> list[DocumentRecord]:
    """Chunk rows that lack a representation the collection keeps get it encoded from their text."""
    for kinds in _engine_kinds(target.encoders).values():
        missing = [k for k in kinds if any(getattr(c, k) is None for r in records for c in r.chunks)]
        if not missing:
            continue
        engine = getattr(target.encoders, missing[0])
        texts = [c.text for r in records for c in r.chunks]
        values: dict[str, list[Any]] = {}
        for call_kinds, call in encode_calls(engine, missing, texts, "document"):
            (result,) = engine.run_sync([call])
            values.update(values_of(call_kinds, result))
        records = _with_values(records, values)
    return records


def _with_values(records: list[DocumentRecord], values: dict[str, list[Any]]) -> list[DocumentRecord]:
    out, i = [], 0
    for r in records:
        chunks = []
        for c in r.chunks:
            got = {k: v[i] for k, v in values.items()}
            chunks.append(
                ChunkRecord(
                    c.text,
                    c.position,
                    c.char_start,
                    c.char_end,
                    c.page,
                    got.get("dense", c.dense),
                    got.get("multivector", c.multivector),
                    got.get("sparse", c.sparse),
                )
            )
            i += 1
        out.append(DocumentRecord(r.id, r.text, r.metadata, r.content_hash, r.source, r.page, tuple(chunks)))
    return out


def _index_rows(records: Sequence[DocumentRecord], written: WriteResult) -> list[ChunkRow]:
    """The committed chunks as the indexes take them (ids in insertion order; vectors as the store keeps them)."""
    skipped = set(written.skipped)
    out: list[ChunkRow] = []
    ids = iter(written.added.tolist())
    for r in records:
        if r.id in skipped:
            continue
        for c in r.chunks:
            mv = None if c.multivector is None else np.asarray(c.multivector).astype("<f2").astype(np.float32)
            dense = None if c.dense is None else np.asarray(c.dense, np.float32)
            key = r.id if len(r.chunks) == 1 else f"{r.id}#{c.position}"
            out.append(
                ChunkRow(
                    next(ids),
                    key,
                    r.id,
                    c.position,
                    c.page,
                    c.char_start,
                    c.char_end,
                    c.text,
                    r.metadata,
                    r.source,
                    written.seq,
                    dense,
                    mv,
                    c.sparse,
                )
            )
    return out


def _commit(
    target: BulkTarget, batch: list[Item], report: BulkReport
) -> tuple[list[DocumentRecord], WriteResult] | None:
    """Encode what lacks vectors and write one batch in one transaction; None when nothing changed."""
    stored = target.store.content_hashes(target.name, [d.id for d in batch])
    ready = [d for d in batch if isinstance(d, DocumentRecord) and stored.get(d.id) != d.content_hash]
    sources = [d for d in batch if isinstance(d, SourceDocument) and stored.get(d.id) != hash_document(d, target.spec)]
    report.unchanged += len(batch) - len(ready) - len(sources)
    filled = _fill_chunks(target, ready)
    records = filled + _encode_sources(target, sources)
    report.encoded += len(sources) + (0 if filled is ready else len(ready))
    if not records:
        return None
    written = target.store.write(target.name, records)
    report.unchanged += len(written.skipped)
    return records, written


def _index(target: BulkTarget, records: list[DocumentRecord], written: WriteResult, report: BulkReport) -> None:
    """Apply one committed batch to the indexes; only then does it count as loaded."""
    target.indexes.apply(_index_rows(records, written), written.removed, written.seq)
    report.documents += len(records) - len(written.skipped)
    report.chunks += int(written.added.size)
    report.batches += 1
    report.seq = written.seq


def bulk_load(
    target: BulkTarget,
    inputs: Sequence[BulkInput],
    options: BulkOptions | None = None,
    progress: Callable[[BulkReport], None] | None = None,
) -> BulkReport:
    """Load `inputs` into `target` (see the module doc); `progress` is called after each loaded batch.

    Two stages overlap: while a worker thread adds batch i to the indexes (BM25 tokenising, FAISS adds), this
    thread reads, checks and commits batch i + 1 (SQLite works outside the interpreter lock).
    """
    options = options or BulkOptions()
    if options.batch_documents < 1:
        raise InvalidRequestError(
            "batch_documents must be >= 1", param="batch_documents", received=options.batch_documents
        )
    started = time.perf_counter()
    layouts = check_inputs(target, inputs, options)
    report = BulkReport()
    errors = _Errors(report, options.max_errors)
    with target.indexes.bulk(target.name), ThreadPoolExecutor(1, thread_name_prefix="bulk-index") as indexer:
        pending: Future[None] | None = None
        try:
            for batch in _batches(_items(inputs, layouts, target, errors), options.batch_documents, errors):
                committed = _commit(target, batch, report)
                _wait(pending, progress, report)
                pending = None if committed is None else indexer.submit(_index, target, *committed, report)
        except RetrievalError as exc:  # a damaged input met halfway (a truncated stream): say what is in
            _wait(pending, progress, report)
            _note_committed(exc, report)
            raise
        _wait(pending, progress, report)
    report.seconds = time.perf_counter() - started
    return report


def _note_committed(exc: RetrievalError, report: BulkReport) -> None:
    """Add to `exc` what was committed before it (each batch is durable on its own; a rerun skips those)."""
    if report.batches:
        exc.message = (
            f"{exc.message} ({report.documents} documents in {report.batches} batches were committed before this "
            "error; running the same load again skips them)"
        )
        exc.args = (exc.message,)


def _wait(pending: Future[None] | None, progress: Callable[[BulkReport], None] | None, report: BulkReport) -> None:
    if pending is not None:
        pending.result()
        if progress is not None:
            progress(report)
