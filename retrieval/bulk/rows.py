"""Arrow record batches to documents, row by row, with a report line for every row that cannot go in.

Two layouts, told apart by the columns: **chunk rows** (``position``, ``char_start``, ``char_end``: what
`embed` writes; a document is its consecutive rows, and its text is rebuilt from the chunks, which cover it
whole) and **document rows** (one document per row: ``id``/``_id``/``doc_id``, ``text``, optional ``title``
joined the BEIR way, ``metadata``, ``source``, ``page``). Vector columns are checked per row against the
collection's widths (dimension, NaN, infinity); a representation whose column is absent is encoded on the
way in, as in an ordinary ingest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from retrieval.bulk.columns import ListColumn
from retrieval.errors import InvalidRequestError, RetrievalError
from retrieval.ingest.documents import SourceDocument, content_hash
from retrieval.ingest.records import record_document
from retrieval.store import ChunkRecord, DocumentRecord, check_document_id

__all__ = ["Assembler", "Layout", "RowError"]

_ID_COLUMNS = ("doc_id", "id", "_id")
_SPAN_COLUMNS = ("position", "char_start", "char_end")


@dataclass(frozen=True)
class RowError:
    """One input row (0-based, counted across every input in order) that was left out, and why."""

    row: int  # input row number
    id: str | None  # its document id, when it has one
    param: str  # the field at fault: id, text, vectors.dense, ...
    message: str  # what is wrong with it


@dataclass(frozen=True)
class Layout:
    """Which columns of an input mean what."""

    id: str  # document id column
    text: str  # text column (the chunk's text for chunk rows)
    chunked: bool  # one row per chunk (embed output) rather than per document
    kinds: tuple[str, ...]  # vector representations the input carries
    dense: str = "dense"  # dense vector column

    @classmethod
    def of(cls, schema: pa.Schema, id_column: str | None, dense_column: str, name: str) -> Layout:
        names = set(schema.names)
        ident = id_column or next((c for c in _ID_COLUMNS if c in names), None)
        if ident is None or ident not in names:
            raise RetrievalError(f"`{name}` has no id column (looked for {id_column or _ID_COLUMNS})", param="id")
        if "text" not in names:
            raise RetrievalError(f"`{name}` has no `text` column", param="text")
        columns = {"dense": dense_column, "multivector": "multivector", "sparse": "sparse_ids"}
        present = tuple(kind for kind, column in columns.items() if column in names)
        _check_types(schema, {**columns, "sparse_weights": "sparse_weights", "mv_rows": "multivector_rows"}, name)
        return cls(ident, "text", all(c in names for c in _SPAN_COLUMNS), present, dense_column)


def _numbers(kind: pa.DataType, integers: bool = False) -> bool:
    return pa.types.is_integer(kind) or (not integers and pa.types.is_floating(kind))


def _is_list_of(kind: pa.DataType, integers: bool = False) -> bool:
    lists = pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    return lists and _numbers(kind.value_type, integers)


_TYPES: dict[str, tuple[str, Callable[[pa.DataType], bool]]] = {  # role -> (what it must be, check)
    "dense": ("a list of numbers per row", _is_list_of),
    "sparse": ("a list of integers per row", lambda t: _is_list_of(t, integers=True)),
    "sparse_weights": ("a list of numbers per row", _is_list_of),
    "multivector": ("float16 bytes per row", lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t)),
    "mv_rows": ("an integer per row", lambda t: _numbers(t, integers=True)),
}


def _check_types(schema: pa.Schema, columns: Mapping[str, str], name: str) -> None:
    """Refuse (400) a vector column of the wrong Arrow type (a `dense` column of strings, say) before any row."""
    for role, column in columns.items():
        if column not in schema.names:
            continue
        kind = schema.field(column).type
        what, ok = _TYPES[role]
        if not ok(kind):
            param = f"vectors.{role}" if role in ("dense", "multivector", "sparse") else column
            raise InvalidRequestError(
                f"`{name}`: column `{column}` holds {kind}; it must hold {what}", param=param, received=str(kind)
            )


@dataclass
class _Vectors:
    """The vector columns of one record batch, decoded once."""

    dense: ListColumn | None = None
    mv: list[bytes | None] | None = None
    mv_rows: list[int | None] | None = None
    sparse_ids: ListColumn | None = None
    sparse_weights: ListColumn | None = None


def _bad(row: int, doc_id: str | None, param: str, message: str) -> RowError:
    return RowError(row, doc_id, param, message)


@dataclass
class _Pending:
    """The rows of one document seen so far (chunk layout)."""

    id: str
    first_row: int
    metadata: Any
    source: str | None
    page: int | None
    chunks: list[ChunkRecord] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    digest: Any = field(default_factory=hashlib.sha256)


class Assembler:
    """Feed record batches in input order; iterate documents (`DocumentRecord` when every kept representation
    came with vectors, `SourceDocument` when the service must chunk or encode) and collect `errors`."""

    def __init__(self, layout: Layout, dims: Mapping[str, int], kinds: Sequence[str], first_row: int = 0) -> None:
        self.layout = layout  # what the columns mean
        self.dims = dict(dims)  # the collection's vector widths
        self.wanted = set(kinds)  # kinds the collection keeps
        self.kinds = [k for k in kinds if k in layout.kinds]  # those the input gives
        self.row = first_row  # number of the next input row
        self.errors: list[RowError] = []  # rows left out so far
        self._pending: _Pending | None = None

    def feed(self, batch: pa.RecordBatch) -> Iterator[tuple[int, DocumentRecord | SourceDocument]]:
        """``(first input row, document)`` for every document completed by `batch`."""
        cols = {name: batch.column(name) for name in batch.schema.names}
        ids = cols[self.layout.id].to_pylist()
        texts = cols[self.layout.text].to_pylist()
        vec = self._vectors(cols)
        meta = cols["metadata"].to_pylist() if "metadata" in cols else [None] * len(ids)
        sources = cols["source"].to_pylist() if "source" in cols else [None] * len(ids)
        pages = cols["page"].to_pylist() if "page" in cols else [None] * len(ids)
        if self.layout.chunked:
            spans = [cols[c].to_pylist() for c in _SPAN_COLUMNS]
            for i, doc_id in enumerate(ids):
                yield from self._chunk_row(
                    i, doc_id, texts[i], [s[i] for s in spans], vec, meta[i], sources[i], pages[i]
                )
                self.row += 1
        else:
            titles = cols["title"].to_pylist() if "title" in cols else [None] * len(ids)
            for i, doc_id in enumerate(ids):
                record = {"id": doc_id, "title": titles[i], "text": texts[i], "metadata": _meta_value(meta[i])}
                doc = self._document_row(i, record, vec, sources[i], pages[i])
                if doc is not None:
                    yield self.row, doc
                self.row += 1

    def close(self) -> Iterator[tuple[int, DocumentRecord | SourceDocument]]:
        """The last document (chunk layout) once the input is over."""
        if self._pending is not None:
            done, self._pending = self._pending, None
            yield from self._finish(done)

    # -- vectors ------------------------------------------------------------------------------------
    def _vectors(self, cols: dict[str, Any]) -> _Vectors:
        vec = _Vectors()
        if "dense" in self.kinds:
            vec.dense = ListColumn.of(cols[self.layout.dense], "<f4")
        if "multivector" in self.kinds:
            vec.mv = cols["multivector"].to_pylist()
            vec.mv_rows = cols["multivector_rows"].to_pylist() if "multivector_rows" in cols else [None] * len(vec.mv)
        if "sparse" in self.kinds:
            vec.sparse_ids = ListColumn.of(cols["sparse_ids"], "<i8")
            vec.sparse_weights = ListColumn.of(cols["sparse_weights"], "<f4")
        return vec

    def _row_vectors(self, i: int, vec: _Vectors) -> dict[str, Any]:
        """The vectors of row `i` by kind; ValueError naming the kind when one is missing or malformed."""
        out: dict[str, Any] = {}
        if vec.dense is not None:
            out["dense"] = self._checked("dense", vec.dense.row(i))
        if vec.mv is not None and vec.mv_rows is not None:
            out["multivector"] = self._checked("multivector", _float16_rows(vec.mv[i], vec.mv_rows[i]))
        if vec.sparse_ids is not None and vec.sparse_weights is not None:
            out["sparse"] = _sparse_row(vec.sparse_ids.row(i), vec.sparse_weights.row(i))
        return out

    def _checked(self, kind: str, value: npt.NDArray[Any] | None) -> npt.NDArray[Any]:
        if value is None:
            raise ValueError(kind, f"no {kind} vector in this row (leave the column out to have it encoded)")
        width = value.shape[-1] if value.size else 0
        if width != self.dims[kind]:
            raise ValueError(kind, f"{kind} vector has dimension {width}; the collection stores {self.dims[kind]}")
        if not np.isfinite(value).all():
            raise ValueError(kind, f"{kind} vector holds NaN or infinity")
        return value

    # -- document rows -------------------------------------------------------------------------------
    def _document_row(
        self, i: int, record: dict[str, Any], vec: _Vectors, source: str | None, page: int | None
    ) -> DocumentRecord | SourceDocument | None:
        error = self._check_id(record["id"])
        doc_id = None if error else str(record["id"])
        try:
            if error:
                raise ValueError("id", error)
            doc = record_document(record, name="input", n=self.row + 1, where=f"row {self.row}")
            if doc is None:
                raise ValueError("text", "the row has no text")
            vectors = self._row_vectors(i, vec)
        except ValueError as exc:
            self.errors.append(_bad(self.row, doc_id, _param(exc.args[0]), exc.args[1]))
            return None
        except RetrievalError as exc:
            self.errors.append(_bad(self.row, doc_id, exc.param or "row", exc.message))
            return None
        doc = SourceDocument(doc.id, doc.text, doc.metadata, source, page)
        if not self.wanted <= set(vectors):  # the service encodes the rest, as an ordinary ingest would
            given = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in vectors.items()}
            return SourceDocument(doc.id, doc.text, doc.metadata, source, page, given or None)
        return _one_chunk_record(doc, vectors)

    @staticmethod
    def _check_id(value: object) -> str | None:
        if value is None or value == "" or isinstance(value, bool) or not isinstance(value, str | int):
            return f"missing or invalid document id {str(value)[:80]!r}"
        try:
            check_document_id(str(value))
        except InvalidRequestError as exc:
            return exc.message
        return None

    # -- chunk rows ----------------------------------------------------------------------------------
    def _chunk_row(
        self, i: int, doc_id: Any, text: Any, span: list[Any], vec: _Vectors, meta: Any, source: Any, page: Any
    ) -> Iterator[tuple[int, DocumentRecord]]:
        error = self._check_id(doc_id)
        if error:
            self.errors.append(_bad(self.row, None, "id", error))
            return
        doc_id = str(doc_id)
        pending = self._pending
        if pending is None or pending.id != doc_id:
            if pending is not None:
                yield from self._finish(pending)
            pending = self._pending = _Pending(doc_id, self.row, _meta_value(meta), source, page)
        try:
            if not isinstance(text, str) or not text.strip():
                raise ValueError("text", "the chunk has no text")
            position, start, end = (int(v) for v in span)
            if not 0 <= start <= end or end - start != len(text):
                raise ValueError("char_start", f"span [{start}, {end}) does not fit the chunk's {len(text)} characters")
            vectors = self._row_vectors(i, vec)
        except (ValueError, TypeError) as exc:
            param, message = exc.args if len(exc.args) == 2 else ("row", str(exc))
            pending.errors.append(_bad(self.row, doc_id, _param(param), message))
            return
        for value in vectors.values():
            pending.digest.update(
                np.ascontiguousarray(value).tobytes() if isinstance(value, np.ndarray) else repr(value).encode()
            )
        chunk = ChunkRecord(
            text, position, start, end, page, vectors.get("dense"), vectors.get("multivector"), vectors.get("sparse")
        )
        pending.chunks.append(chunk)

    def _finish(self, doc: _Pending) -> Iterator[tuple[int, DocumentRecord]]:
        if doc.errors:  # one bad chunk row leaves its whole document out: never a partial document
            whole = f" (document `{doc.id}` left out: its other chunk rows are not loaded either)"
            self.errors += [RowError(e.row, e.id, e.param, e.message + whole) for e in doc.errors]
            return
        try:
            text = _rebuild_text(doc.chunks)
            if not isinstance(doc.metadata, dict):
                raise ValueError("metadata", "metadata must be a JSON object")
        except ValueError as exc:
            self.errors.append(_bad(doc.first_row, doc.id, exc.args[0], exc.args[1]))
            return
        chunks = [
            ChunkRecord(c.text, c.position, c.char_start, c.char_end, c.page, c.dense, c.multivector, c.sparse)
            for c in doc.chunks
        ]
        source_doc = SourceDocument(doc.id, text, doc.metadata, doc.source, doc.page)
        spans = repr([(c.position, c.char_start, c.char_end) for c in chunks]).encode()
        digest = content_hash(source_doc, spans + doc.digest.digest())
        yield doc.first_row, DocumentRecord(doc.id, text, doc.metadata, digest, doc.source, doc.page, tuple(chunks))


def _param(kind: str) -> str:
    return f"vectors.{kind}" if kind in ("dense", "multivector", "sparse") else kind


def _meta_value(value: Any) -> Any:
    """Metadata as given: JSON object text, a struct/map already decoded by Arrow, or nothing."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, list):  # an Arrow map column decodes to (key, value) pairs
        return dict(value)
    return value


def _float16_rows(blob: bytes | None, rows: int | None) -> npt.NDArray[Any] | None:
    if blob is None:
        return None
    if not rows or len(blob) % (2 * rows):
        raise ValueError("multivector", f"multivector bytes ({len(blob)}) do not hold {rows} float16 rows")
    return np.frombuffer(blob, "<f2").reshape(rows, -1).astype(np.float32)


def _sparse_row(ids: npt.NDArray[Any] | None, weights: npt.NDArray[Any] | None) -> dict[int, float]:
    if ids is None or weights is None or len(ids) != len(weights):
        raise ValueError("sparse", "sparse_ids and sparse_weights must both be given, of equal length")
    if not np.isfinite(weights).all():
        raise ValueError("sparse", "sparse weights hold NaN or infinity")
    if len(ids) and (ids.min() < 0 or ids.max() >= 2**31):
        raise ValueError("sparse", "sparse token ids must be in [0, 2**31)")
    return dict(zip(ids.tolist(), weights.tolist(), strict=True))


def _rebuild_text(chunks: list[ChunkRecord]) -> str:
    """The document text the chunks were cut from (they cover it whole, in order; overlaps must agree)."""
    text = ""
    for c in sorted(chunks, key=lambda c: c.position):
        if c.char_start > len(text):
            raise ValueError("char_start", f"chunk {c.position} starts at {c.char_start}, past the text so far")
        if text[c.char_start : c.char_end] != c.text[: len(text) - c.char_start]:
            raise ValueError("text", f"chunk {c.position} disagrees with the chunk before it where they overlap")
        text += c.text[len(text) - c.char_start :]
    if len({c.position for c in chunks}) != len(chunks):
        raise ValueError("position", "chunk positions repeat")
    return text


def _one_chunk_record(doc: SourceDocument, vectors: dict[str, Any]) -> DocumentRecord:
    """A document that brings its own vectors is one chunk of its whole text (as an ordinary ingest does)."""
    blob = b"".join(
        np.ascontiguousarray(v).tobytes() if isinstance(v, np.ndarray) else repr(v).encode() for v in vectors.values()
    )
    chunk = ChunkRecord(
        doc.text, 0, 0, len(doc.text), doc.page, vectors.get("dense"), vectors.get("multivector"), vectors.get("sparse")
    )
    return DocumentRecord(doc.id, doc.text, dict(doc.metadata), content_hash(doc, blob), doc.source, doc.page, (chunk,))
